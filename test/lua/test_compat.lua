-- test_compat -- what skynet code beyond the seed relies on, in one
-- process (the node calls itself over its own listener): skynet.send to an
-- address with no service, the global forms of uniqueservice and
-- queryservice, skynet.hpc in nanoseconds, newservice arguments as
-- strings, skynet.queue, snax in one node, the ".service" manager, bare
-- (global) names as cluster targets, and per-call deadlines.
local T = require "testlib"
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local snax = require "skynet.snax"
local queue = require "skynet.queue"

local dir = T.tmpdir()
local url = "ipc://" .. dir .. "/me.ipc"
local mapfile = dir .. "/map.lua"
local logfile = dir .. "/log.txt"
T.write(mapfile, string.format('me = %q\n', url))
skynet.setenv("luaservice", T.testdir .. "/svc/?.lua;" .. T.source
    .. "/examples/lua/skynet_cluster/?.lua")
skynet.setenv("snax", T.testdir .. "/snax/?.lua")
skynet.setenv("cluster", mapfile)
skynet.setenv("logger", logfile)

local function body()
    cluster.open("me")

    -- skynet.send to an address with no service: a log line, no error ----
    local victim = skynet.newservice("args_probe")
    skynet.kill(victim)
    T.eq(skynet.send(victim, "lua", "args"), nil, "send to a dead service")
    T.eq(skynet.send(0x7ffff0, "lua", "x"), nil, "send to an unknown one")
    T.eq(skynet.send(".nobody", "lua", "x"), nil, "send to an unknown name")
    T.raises("unknown service", skynet.call, victim, "lua", "args")
    local probe = skynet.newservice("args_probe")
    T.eq(skynet.send(probe, "lua", "noop"), 0, "a send that is delivered")

    -- newservice arguments are strings, split at white space -------------
    local a = skynet.newservice("args_probe", 42, "two words", 1.5)
    local n, joined, types = skynet.call(a, "lua", "args")
    T.eq(n, 4, "4 arguments after the split")
    T.eq(joined, "42|two|words|1.5")
    T.eq(types, "string|string|string|string")
    T.raises({ "newservice args_probe", "argument #2 is a boolean" },
        skynet.newservice, "args_probe", "x", true)
    T.raises("argument #1 is a table", skynet.newservice, "args_probe", {})

    -- uniqueservice / queryservice, local and global forms --------------
    local u = skynet.uniqueservice("args_probe", "local")
    local g = skynet.uniqueservice(true, "args_probe", "global")
    T.ok(u ~= g, "the global form is a namespace of its own")
    T.eq(skynet.uniqueservice(true, "args_probe"), g, "global: one instance")
    T.eq(skynet.queryservice(true, "args_probe"), g, "queryservice(true, n)")
    T.eq(skynet.queryservice("args_probe"), u)
    T.eq(select(2, skynet.call(g, "lua", "args")), "global")
    T.raises("name must be a string", skynet.uniqueservice, true)
    -- a queryservice waits for the uniqueservice that starts it
    local got
    skynet.fork(function() got = skynet.queryservice(true, "echo_svc") end)
    skynet.yield()
    T.eq(got, nil, "queryservice waits")
    local e = skynet.uniqueservice(true, "echo_svc", "late")
    for _ = 1, 10 do if got then break end skynet.yield() end
    T.eq(got, e, "queryservice woken by the start")

    -- skynet.hpc: monotonic nanoseconds ---------------------------------
    local h1 = skynet.hpc()
    local h2 = skynet.hpc()
    T.ok(math.type(h1) == "integer" and h2 >= h1, "hpc is monotonic")
    skynet.sleep(2)
    local d = skynet.hpc() - h2
    T.ok(d >= 15000000 and d < 5000000000, "20 ms of sleep in ns: " .. d)
    local t0 = skynet.hpc()
    local sum = 0
    for i = 1, 1000 do sum = sum + i end
    T.ok(skynet.hpc() - t0 > 0 and sum > 0, "a short loop reads > 0 ns")

    -- skynet.queue: one coroutine at a time, in arrival order -----------
    local cs = queue()
    local trace = {}
    local done = 0
    local me = coroutine.running()
    for i = 1, 3 do
        skynet.fork(function()
            cs(function()
                trace[#trace + 1] = "in" .. i
                skynet.sleep(1)
                -- re-entrant for the coroutine inside
                cs(function() trace[#trace + 1] = "again" .. i end)
                trace[#trace + 1] = "out" .. i
            end)
            done = done + 1
            if done == 3 then skynet.wakeup(me) end
        end)
    end
    skynet.wait(me)
    T.eq(table.concat(trace, " "), "in1 again1 out1 in2 again2 out2 in3 "
        .. "again3 out3", "critical sections do not interleave")
    T.raises("boom", cs, function() error("boom", 0) end)
    T.eq(cs(function(x, y) return x + y, "r" end, 1, 2), 3, "results")

    -- snax in one node ---------------------------------------------------
    local ping = snax.newservice("ex_ping", "local", 1)
    T.eq(ping.req.ping("hi"), "hi", "snax req")
    T.same({ ping.req.whoami() }, { "ex_ping", "ex_ping" }, "snax.self")
    T.eq(tostring(ping), string.format("[ex_ping:%x]", ping.handle))
    T.eq(snax.bind(ping.handle, "ex_ping"), ping, "bind: one object")
    ping.post.hold("a", 20)
    ping.post.hold("b", 1)
    ping.post.hello()
    skynet.sleep(30)
    T.eq(ping.req.order(), "a b", "accepts share the queue in order")
    T.raises("throw an error", ping.req.error)
    T.raises("no req (response) method nope", function()
        return ping.req.nope
    end)
    local ping2 = snax.uniqueservice("ex_ping")
    T.ok(ping2.handle ~= ping.handle, "uniqueservice starts its own")
    T.eq(snax.uniqueservice("ex_ping"), ping2, "and only one")
    T.eq(snax.queryservice("ex_ping"), ping2, "queryservice")
    local gping = snax.globalservice("ex_ping")
    T.ok(gping.handle ~= ping2.handle, "globalservice: its own namespace")
    T.eq(snax.queryglobal("ex_ping"), gping, "queryglobal")
    snax.kill(ping, "killed")
    T.raises("unknown service", skynet.call, ping.handle, "snax", 4)
    gping.post.exit("posted")
    skynet.sleep(5)
    T.eq(skynet.send(gping.handle, "lua", "x"), nil, "snax.exit: gone")
    T.raises({ "snax no_such_snax_service: not found on the snax path",
        "no file '" .. T.testdir .. "/snax/no_such_snax_service.lua'" },
        snax.interface, "no_such_snax_service")

    -- the ".service" manager, local and over the cluster ----------------
    local list = skynet.call(".service", "lua", "LIST")
    T.eq(list["snaxd.ex_ping"], skynet.address(ping2.handle), "LIST")
    T.eq(cluster.call("me", ".service", "QUERY", "snaxd", "ex_ping"),
        ping2.handle, "remote .service QUERY")
    T.eq(cluster.call("me", ".service", "GQUERY", "args_probe"), g,
        "remote .service GQUERY")
    local none, why = cluster.call("me", ".service", "NOPE")
    T.eq(none, nil) T.has(why, "Invalid command NOPE")
    local rping = cluster.snax("me", "ex_ping")
    T.eq(rping.req.ping("remote"), "remote", "cluster.snax, own node")

    -- bare (global) names as cluster targets -----------------------------
    local sdb = skynet.newservice("simpledb") -- skynet.register "SIMPLEDB"
    skynet.call(sdb, "lua", "SET", "k", "v")
    T.eq(cluster.call("me", "SIMPLEDB", "GET", "k"), "v", "bare name")
    T.eq(cluster.call("me", "@SIMPLEDB", "GET", "k"), "v", "as @name too")
    -- a cluster name takes precedence over a global name, and gives it back
    local echo = skynet.newservice("echo_svc", "echo")
    cluster.register("SIMPLEDB", echo)
    T.eq(cluster.call("me", "SIMPLEDB", "name"), "echo", "cluster name wins")
    cluster.unregister("SIMPLEDB")
    T.eq(cluster.call("me", "SIMPLEDB", "GET", "k"), "v", "global again")
    skynet.kill(sdb)
    T.raises("ENOSERVICE", cluster.call, "me", "SIMPLEDB", "GET", "k")
    local sdb2 = skynet.newservice("simpledb")
    T.eq(cluster.call("me", "SIMPLEDB", "GET", "k"), nil, "a new SIMPLEDB")
    skynet.kill(sdb2)

    -- per-call deadlines --------------------------------------------------
    local slow = skynet.newservice("args_probe") -- "sleep" takes 600 ms
    cluster.register("slow", slow)
    T.eq(cluster.set_timeout(200), 0, "set_timeout returns the old value")
    T.raises("ETIMEDOUT", cluster.call, "me", "@slow", "sleep")
    T.eq(cluster.call_timeout(3000, "me", "@slow", "sleep"), "slept",
        "call_timeout: a longer deadline for one call")
    T.eq(cluster.call_timeout(false, "me", "@slow", "sleep"), "slept",
        "call_timeout(false): no deadline")
    T.raises("no reply within 100 ms", cluster.call_timeout, 100, "me",
        "@slow", "sleep")
    T.eq(cluster.with_timeout(false, function(x)
        local r = cluster.call("me", "@slow", "sleep")
        local pr = skynet.call(cluster.proxy("me@slow"), "lua", "sleep")
        return r .. pr .. x
    end, "!"), "sleptslept!", "with_timeout(false): calls and proxies")
    T.raises("ETIMEDOUT", cluster.with_timeout, 3000, function()
        return cluster.with_timeout(100, cluster.call, "me", "@slow",
            "sleep")
    end)
    T.raises("ETIMEDOUT", cluster.call, "me", "@slow", "sleep")
    T.eq(cluster.set_timeout(false), 200)
    T.eq(cluster.call("me", "@slow", "sleep"), "slept", "set_timeout(false)")
    T.eq(cluster.set_timeout(0), false, "false reads back as false")
    T.raises("expected milliseconds", cluster.call_timeout, -1, "me", "@x")
    T.raises("expected milliseconds", cluster.call_timeout, nil, "me", "@x")
    T.raises("expected a function", cluster.with_timeout, 10, "x")
end

T.skynet_main(body, 60)
local log = T.read(logfile) or ""
T.has(log, "skynet.send: no service :", "message dropped",
    "skynet.send: no service .nobody")
T.cleanup()
T.finish()
