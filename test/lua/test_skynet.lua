-- test_skynet -- the skynet layer inside one process: services, dispatch,
-- call/send/ret/response, names, coroutines, timers, env, exit, errors.
-- Runs as a plain `lua5.4` script: skynet.start at top level makes the
-- script the main service.
local T = require "testlib"
local skynet = require "skynet"
local manager = require "skynet.manager"

local dir = T.tmpdir()
local logfile = dir .. "/log.txt"
skynet.setenv("luaservice", T.testdir .. "/svc/?.lua")
skynet.setenv("logger", logfile)

T.eq(manager, skynet, "skynet.manager returns skynet")
T.raises("must run in a service coroutine", skynet.call, 1, "lua", "x")
T.raises("must run in a service coroutine", skynet.sleep, 1)

local function body()
    local me = skynet.self()
    T.ok(math.type(me) == "integer" and me > 0, "self is a handle")
    T.eq(skynet.address(me), string.format(":%08x", me), "address")
    T.eq(skynet.address(".x"), ".x", "address of a name")

    -- newservice, call, ret, pack ------------------------------------------
    local echo = skynet.newservice("echo_svc", "first")
    T.ok(math.type(echo) == "integer" and echo ~= me, "newservice handle")
    T.eq(skynet.call(echo, "lua", "name"), "first", "launch argument")
    local a, b, c, d = skynet.call(echo, "lua", "echo", 1, nil, 2.5, { x = { 1 } })
    T.eq(a, 1) T.eq(b, nil) T.eq(c, 2.5) T.same(d, { x = { 1 } })
    T.eq(select("#", skynet.call(echo, "lua", "echo", nil, nil)), 2,
        "nil values counted")
    T.eq(skynet.call(echo, "lua", "retpack", "rp"), "rp", "retpack")
    local raw = skynet.rawcall(echo, "lua", skynet.pack("echo", "r"))
    T.eq(type(raw), "string", "rawcall returns the payload")
    T.eq(skynet.unpack(raw), "r", "unpack")
    T.eq(skynet.tostring("abc", 2), "ab", "tostring with size")
    T.eq(skynet.call(echo, "lua", "self"), echo, "self inside the service")

    -- send keeps order with later messages
    for _ = 1, 5 do skynet.send(echo, "lua", "inc") end
    T.eq(skynet.call(echo, "lua", "count"), 5, "sends before a call")

    -- errors --------------------------------------------------------------
    local err = T.raises({ "skynet.call", skynet.address(echo), "kaboom" },
        skynet.call, echo, "lua", "err", "kaboom")
    T.raises({ "returned without replying" }, skynet.call, echo, "lua",
        "noreply")
    T.raises({ "unknown command nope" }, skynet.call, echo, "lua", "nope")
    T.raises({ "unknown service", ":7fffff00" }, skynet.call, 0x7fffff00,
        "lua", "x")
    T.raises({ "unknown service", ".nobody" }, skynet.call, ".nobody", "lua")
    T.raises({ "unknown protocol" }, skynet.call, echo, "nosuch", 1)
    T.raises({ "cannot pack a function" }, skynet.call, echo, "lua", "echo",
        print)
    T.raises({ "newservice no_such_service", "not found" },
        skynet.newservice, "no_such_service")
    T.raises({ "newservice bad_start failed", "start failed on purpose" },
        skynet.newservice, "bad_start")
    T.ok(err, "error text")

    -- response (deferred answers) -------------------------------------------
    local late, before = skynet.call(echo, "lua", "later", 2)
    T.eq(late, "late", "response") T.eq(before, true, "response('test')")
    T.raises({ "refused by service" }, skynet.call, echo, "lua", "refuse")

    -- own globals per service, own modules per service -----------------------
    local echo2 = skynet.newservice("echo_svc", "second")
    T.eq(skynet.call(echo, "lua", "setglobal", "one"), nil)
    T.eq(skynet.call(echo2, "lua", "setglobal", "two"), nil,
        "globals are per service")
    T.eq(skynet.call(echo, "lua", "setglobal", "uno"), "one")
    T.eq(MY_GLOBAL, nil, "the main script's globals are untouched")
    local m1 = skynet.newservice("mod_user")
    local m2 = skynet.newservice("mod_user")
    T.eq(skynet.call(m1, "lua"), 1) T.eq(skynet.call(m1, "lua"), 2)
    T.eq(skynet.call(m2, "lua"), 1, "require'd modules are per service")

    -- a service serves while one of its coroutines waits -------------------
    local t0 = skynet.now()
    local relay_done = false
    skynet.fork(function()
        local r = skynet.call(echo, "lua", "relay", echo2, "sleep", 100)
        T.eq(r, "slept", "relay result")
        relay_done = true
    end)
    skynet.yield()
    -- echo is blocked in relay; it still answers us at once
    T.eq(skynet.call(echo, "lua", "echo", "quick"), "quick",
        "served while waiting")
    -- (the relay takes 1 s; a loaded ASan run needs slack below that)
    T.ok(skynet.now() - t0 < 100, "not delayed by the relay")
    for _ = 1, 300 do
        if relay_done then break end
        skynet.sleep(1)
    end
    T.ok(relay_done, "relay finished")

    -- uniqueservice / queryservice -----------------------------------------
    local u1, u2
    local waiter = coroutine.running()
    local pending = 2
    for i = 1, 2 do
        skynet.fork(function()
            local h = skynet.uniqueservice("counter")
            if i == 1 then u1 = h else u2 = h end
            pending = pending - 1
            if pending == 0 then skynet.wakeup(waiter) end
        end)
    end
    skynet.wait(waiter)
    T.ok(u1 and u1 == u2, "uniqueservice: one instance")
    T.eq(skynet.uniqueservice("counter"), u1)
    T.eq(skynet.queryservice("counter"), u1, "queryservice")
    T.eq(skynet.call(u1, "lua", "starts"), 1, "started once")

    -- names ---------------------------------------------------------------
    skynet.register(".main")
    T.eq(skynet.localname(".main"), me, "register")
    skynet.name(".echo", echo)
    T.eq(skynet.call(".echo", "lua", "echo", "by name"), "by name",
        "call by .name")
    skynet.name("ECHO", echo2)
    T.eq(skynet.call("ECHO", "lua", "name"), "second", "call by global name")
    T.eq(skynet.call(skynet.address(echo), "lua", "name"), "first",
        "call by :hex")
    T.raises("already taken", skynet.name, ".echo", echo2)
    T.raises("unknown service", skynet.name, ".zz", 0x7ffffff0)

    -- fork, sleep, timeout, wait/wakeup, time ------------------------------------
    local order = {}
    local co = skynet.fork(function(x) order[#order + 1] = x end, "forked")
    T.eq(type(co), "thread", "fork returns the coroutine")
    T.eq(#order, 0, "fork runs later")
    skynet.yield()
    T.eq(order[1], "forked", "fork ran")
    local start = skynet.now()
    T.eq(skynet.sleep(5), nil, "sleep returns nil")
    T.ok(skynet.now() - start >= 5, "sleep waited")
    local fired = false
    skynet.timeout(3, function() fired = true end)
    T.eq(fired, false)
    skynet.sleep(10)
    T.ok(fired, "timeout fired")
    local woken = false
    local token = {}
    skynet.fork(function()
        skynet.wait(token)
        woken = true
    end)
    skynet.yield()
    T.eq(woken, false, "waiting")
    T.ok(skynet.wakeup(token), "wakeup")
    skynet.yield()
    skynet.yield()
    T.ok(woken, "woken")
    T.eq(skynet.wakeup(token), false, "nothing left to wake")
    local sleeper
    local broke
    sleeper = skynet.fork(function() broke = skynet.sleep(500) end)
    skynet.yield()
    T.ok(skynet.wakeup(sleeper), "wake a sleeper")
    skynet.sleep(1)
    T.eq(broke, "BREAK", "sleep interrupted")
    T.ok(math.type(skynet.now()) == "integer", "now")
    T.ok(math.abs(skynet.time() - os.time()) < 5, "time")
    T.ok(math.type(skynet.starttime()) == "integer", "starttime")

    -- env ---------------------------------------------------------------
    skynet.setenv("answer", 42)
    T.eq(skynet.getenv("answer"), "42", "setenv/getenv (strings)")
    T.raises("already set", skynet.setenv, "answer", 1)
    T.eq(skynet.getenv("nope"), nil)

    -- exit and kill --------------------------------------------------------
    T.raises({ "exited" }, skynet.call, echo2, "lua", "exit")
    T.raises({ "unknown service" }, skynet.call, echo2, "lua", "name")
    T.raises({ "unknown service" }, skynet.call, "ECHO", "lua", "name")
    local victim = skynet.newservice("echo_svc", "victim")
    local pending_call
    skynet.fork(function()
        pending_call = { pcall(skynet.call, victim, "lua", "sleep", 100) }
    end)
    skynet.yield()
    T.ok(skynet.kill(victim), "kill")
    skynet.yield()
    skynet.yield()
    T.ok(pending_call and pending_call[1] == false, "call ended by kill")
    T.has(pending_call and pending_call[2], "exited")

    -- init, protocols, launch ---------------------------------------------
    T.eq(skynet.call(echo, "lua", "init"), "yes", "skynet.init")
    T.eq(skynet.dispatch("text", function(_, _, msg)
        skynet.ret(msg:upper())
    end), nil, "dispatch returns the old function")
    T.eq(skynet.call(me, "text", "abc", 1), "ABC 1", "text protocol, self call")
    skynet.register_protocol {
        name = "custom", id = 99,
        pack = function(t) return table.concat(t, ",") end,
        unpack = function(s) local t = {} for w in s:gmatch("[^,]+") do t[#t + 1] = w end return t end,
        dispatch = function(_, _, t) skynet.ret(table.concat(t, "+")) end,
    }
    T.same(skynet.call(me, "custom", { "a", "b" }), { "a+b" }, "register_protocol")
    local launched = skynet.launch("snlua echo_svc", "launched")
    T.eq(skynet.call(launched, "lua", "name"), "launched", "manager launch")

    -- ret outside a request, response twice ----------------------------------
    T.eq(skynet.ret(skynet.pack(1)), false, "ret with nothing to answer")
    T.raises("no request", skynet.response)

    -- skynet.error goes to the logger, prefixed with the service address
    skynet.error("hello", 1, nil, true)
end

T.skynet_main(body, 30)

local log = T.read(logfile) or ""
T.ok(log:find("%[:%x%x%x%x%x%x%x%x%] hello 1 nil true"), "skynet.error line: "
    .. log:sub(-200))
T.has(log, "LAUNCH echo_svc first")
T.has(log, "start failed on purpose")
T.cleanup()
T.finish()
