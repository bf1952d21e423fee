-- test_binding -- the low-level `skc` module: codec, nodes, map, services,
-- call/send/query/reply/poll, errors (nil, msg, code) and raises.
local T = require "testlib"
local skc = require "skc"

-- Version and errors -----------------------------------------------------------
do
    local v, num = skc.version()
    T.eq(v, skc.VERSION, "version string")
    T.ok(math.type(num) == "integer" and num > 0, "version number")
    T.eq(skc.E.ETIMEDOUT, -8, "E table")
    T.eq(skc.E.OK, 0, "E.OK")
    T.eq(skc.errname(-4), "ENODEDOWN", "errname")
    T.eq(skc.strerror(-8), "timed out", "strerror")
    T.eq(skc.errname(-999), "EUNKNOWN", "unknown errname")
    T.raises("number expected", skc.strerror, "x")
    T.ok(math.type(skc.clock()) == "integer", "clock")
    T.ok(math.type(skc.time()) == "float" and skc.time() > 1e9, "time")
end

-- Codec ---------------------------------------------------------------------
local function roundtrip(...)
    return skc.unpack(skc.pack(...))
end

do
    -- scalars keep their Lua subtype
    local a, b, c, d, e, f, g = roundtrip(1, 2.5, 1.0, -0.0, math.maxinteger,
        math.mininteger, 0)
    T.eq(a, 1, "int")
    T.eq(b, 2.5, "float")
    T.eq(c, 1.0, "1.0 stays a float")
    T.eq(math.type(d), "float", "-0.0 float")
    T.eq(e, math.maxinteger, "maxinteger")
    T.eq(f, math.mininteger, "mininteger")
    T.eq(g, 0, "zero")
    local inf, ninf, nan = roundtrip(math.huge, -math.huge, 0 / 0)
    T.eq(inf, math.huge, "inf")
    T.eq(ninf, -math.huge, "-inf")
    T.ok(nan ~= nan, "nan")
    -- nil anywhere, and the count of values
    T.eq(select("#", roundtrip()), 0, "no values")
    T.eq(select("#", roundtrip(nil)), 1, "one nil")
    local x, y, z = roundtrip("a", nil, "b")
    T.eq(select("#", roundtrip("a", nil, "b")), 3, "nil in the middle")
    T.eq(x, "a") T.eq(y, nil) T.eq(z, "b")
    local t, fl = roundtrip(true, false)
    T.eq(t, true) T.eq(fl, false)
    -- strings are byte-exact
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes)
    T.eq(roundtrip(all), all, "all 256 bytes")
    T.eq(roundtrip(""), "", "empty string")
    local big = string.rep("x\0y", 100000)
    T.eq(roundtrip(big), big, "300 kB string")
    T.eq(skc.unpack(""), nil, "empty payload")
    T.eq(select("#", skc.unpack("")), 0, "empty payload has no values")
end

do
    -- tables: arrays (keys exactly 1..n), maps, nesting
    local v = {
        list = { 1, 2, 3, "four", { 5 } },
        map = { a = 1, [10] = "ten", [2.5] = "f", [true] = "t" },
        holes = { [1] = "a", [3] = "c" },
        neg = { [0] = "zero", [-1] = "m" },
        empty = {},
        nested = { { { { "deep" } } } },
    }
    local r = roundtrip(v)
    T.same(r, v, "nested tables round-trip")
    T.eq(#r.list, 5, "array length")
    T.eq(r.holes[2], nil, "hole stays a hole")
    T.eq(r.holes[3], "c", "after the hole")
    T.eq(next(r.empty), nil, "empty table")
    -- wire form: {} and {1,2} are arrays, {a=1} and holes are maps
    T.eq(skc.pack({}), "\x90", "empty table = empty array")
    T.eq(skc.pack({ 1, 2 }), "\x92\x01\x02", "array")
    T.eq(skc.pack({ a = 1 }), "\x81\xa1a\x01", "map")
    T.eq(skc.pack({ [1] = 1, [3] = 3 }):byte(1) & 0xf0, 0x80, "holes -> map")
    T.eq(skc.pack(1.5), "\xcb\x3f\xf8\0\0\0\0\0\0", "float64")
    -- metatables are ignored (raw contents)
    local mt = setmetatable({ x = 1 }, { __index = function() return 9 end })
    T.same(roundtrip(mt), { x = 1 }, "metatable ignored")
    -- shared (non-cyclic) subtables are copied
    local s = { 1 }
    local two = roundtrip({ s, s })
    T.same(two, { { 1 }, { 1 } }, "shared subtable")
    -- depth: 32 levels pass, 33 fail
    local function nest(n)
        local t = {}
        for _ = 2, n do t = { t } end
        return t
    end
    T.ok(pcall(skc.pack, nest(32)), "depth 32 packs")
    T.raises("nested deeper than 32", skc.pack, nest(33))
end

do
    -- errors: cycles, functions, userdata, threads
    local c = {}
    c.self = c
    T.raises({ "skc.pack", "cycle" }, skc.pack, c)
    local c2 = { {} }
    c2[1][1] = c2
    T.raises("cycle", skc.pack, c2)
    T.raises({ "argument #2", "function" }, skc.pack, 1, print)
    T.raises({ "function" }, skc.pack, { f = print })
    T.raises({ "userdata" }, skc.pack, io.stdout)
    T.raises({ "thread" }, skc.pack, coroutine.create(print))
    T.raises({ "function" }, skc.pack, { [print] = 1 })
    -- malformed input
    T.raises("skc.unpack", skc.unpack, "\x92\x01") -- truncated array
    T.raises("skc.unpack", skc.unpack, "\xd9") -- truncated str8
    T.raises("skc.unpack", skc.unpack, "\x81\xc0\x01") -- nil key
    T.raises("string expected", skc.unpack, nil)
    -- BIN decodes to a string too (C senders may use it)
    T.eq(skc.unpack("\xc4\x03a\0b"), "a\0b", "bin -> string")
    -- uint64 beyond int64 becomes a float
    local u = skc.unpack("\xcf\xff\xff\xff\xff\xff\xff\xff\xff")
    T.eq(math.type(u), "float", "uint64 max -> float")
end

-- Nodes: creation, options, bad arguments --------------------------------------
do
    T.raises("bad argument", skc.node, 42)
    T.raises("call_timeout", skc.node, { call_timeout = "soon" })
    T.raises("call_timeout", skc.node, { call_timeout = -1 })
    T.raises("log", skc.node, { log = 12 })
    T.raises("log_level", skc.node, { log_level = "loud" })
    local n <close> = assert(skc.node())
    T.eq(n:name(), "", "unnamed node")
    T.has(tostring(n), "skc.node")
    local m = assert(skc.node { name = "m", call_timeout = 500,
        max_msg_size = 1 << 20 })
    T.eq(m:name(), "m", "named node")
    T.eq(m:closed(), false, "open")
    T.ok(m:close(), "close")
    T.eq(m:closed(), true, "closed")
    T.ok(m:close(), "close twice is fine")
    T.raises("closed", m.name, m)
    T.raises("closed", m.open, m, "127.0.0.1:0")
    T.raises("skc.node expected", skc.node().name, {})
    local fd = assert(n:fd())
    T.ok(math.type(fd) == "integer" and fd >= 0, "fd")
    T.ok(n:wakeup(), "wakeup")
    T.eq(n:poll(0), 0, "wakeup makes poll return 0")
    -- close_listeners (old name unlisten) stops listening, the node stays
    local url = "inproc://skc-lua-close-listeners"
    T.eq(n:open(url), url, "listen")
    T.ok(n:close_listeners(), "close_listeners")
    T.eq(n:open(url), url, "the address is free again")
    T.ok(n:unlisten(), "unlisten, the old name")
    T.eq(n:closed(), false, "close_listeners leaves the node open")
end

-- Map ----------------------------------------------------------------------------
do
    local n <close> = assert(skc.node { name = "mapper" })
    T.ok(n:map_parse('a = "127.0.0.1:1"\nb = false\n-- c\n', "text"), "parse")
    T.eq(n:map_get("a"), "tcp://127.0.0.1:1", "assignment form")
    T.eq(n:map_get("b"), false, "down = false")
    local r, msg, code = n:map_get("zz")
    T.eq(r, nil) T.eq(code, "ENONODE") T.has(msg, "zz")
    T.ok(n:map_parse('return { c = "ipc:///tmp/x.ipc", d = false }'),
        "return-table form")
    T.eq(n:map_get("c"), "ipc:///tmp/x.ipc")
    T.ok(n:map_set("a", "127.0.0.1:2"), "set")
    T.eq(n:map_get("a"), "tcp://127.0.0.1:2")
    T.ok(n:map_set("a", false), "set down")
    T.eq(n:map_get("a"), false)
    T.ok(n:map_update { a = "127.0.0.1:3", e = "127.0.0.1:4", b = false,
        __nowaiting = true }, "update")
    T.eq(n:map_get("a"), "tcp://127.0.0.1:3")
    T.eq(n:map_get("c"), "ipc:///tmp/x.ipc", "merge keeps absent keys")
    r, msg, code = n:map_parse("a = = 1", "bad.lua")
    T.eq(r, nil) T.eq(code, "ESYNTAX") T.has(msg, "bad.lua")
    r, msg, code = n:map_update { x = "not an address" }
    T.eq(r, nil, "bad address refused")
    T.eq(n:map_get("x"), nil, "all or nothing")
    T.raises("expected an address", n.map_update, n, { x = print })
    r, msg, code = n:map_update { x = "127.0.0.1:9", y = {} }
    T.eq(code, "ESYNTAX", "an empty group")
    T.has(msg, "map_update:", "group 'y'", "at least one member")
    T.eq(n:map_get("x"), nil, "all or nothing with a group")
    T.raises("keys must be strings", n.map_update, n, { "a" })
    r, msg, code = n:map_reload()
    T.eq(code, "ESTATE", "reload without a file")
    local dir = T.tmpdir()
    local file = dir .. "/map.lua"
    T.write(file, 'f = "127.0.0.1:5"\n')
    T.ok(n:map_load(file), "load")
    T.eq(n:map_get("f"), "tcp://127.0.0.1:5")
    T.write(file, 'f = "127.0.0.1:6"\ng = false\n')
    T.ok(n:map_reload(), "reload")
    T.eq(n:map_get("f"), "tcp://127.0.0.1:6")
    T.eq(n:map_get("g"), false)
    r, msg, code = n:map_load(dir .. "/missing.lua")
    T.eq(code, "EIO", "missing file") T.has(msg, "missing.lua")
    -- a watched map file reloads itself; fn runs in poll()
    local got = {}
    T.ok(n:map_load(file), "load again")
    T.ok(n:map_watch(true, function(ok, detail)
        got[#got + 1] = { ok, detail }
    end), "map_watch")
    T.write(file, 'f = "127.0.0.1:7"\n')
    T.ok(T.wait_until(function() n:poll(0) return #got >= 1 end, 5000),
        "reloaded after an edit")
    T.eq(got[1][1], true) T.eq(n:map_get("f"), "tcp://127.0.0.1:7")
    T.write(file, 'f = \n')
    T.ok(T.wait_until(function() n:poll(0) return #got >= 2 end, 5000),
        "a bad edit is reported")
    T.eq(got[2][1], false) T.has(got[2][2], "map.lua:")
    T.eq(n:map_get("f"), "tcp://127.0.0.1:7", "a bad edit changes nothing")
    T.ok(n:map_watch(false), "watch off")
end

-- Services and calls in one node (loopback) ---------------------------------------
local function pump(nodes, pred, ms)
    local deadline = skc.clock() + (ms or 3000)
    while not pred() and skc.clock() < deadline do
        for _, n in ipairs(nodes) do n:poll(10) end
    end
    return pred()
end

do
    local logs = {}
    local n <close> = assert(skc.node { name = "self", call_timeout = 2000,
        log = function(level, text, node)
            logs[#logs + 1] = level .. " " .. node .. " " .. text
        end, log_level = "info" })
    local addr = assert(n:open("127.0.0.1:0"))
    T.ok(addr:match("^tcp://127%.0%.0%.1:%d+$"), "bound address " .. addr)
    local r, msg, code = n:open(addr)
    T.eq(r, nil, "second listen on the same address")
    T.ok(code == "EEXIST" or code == "ETRANSPORT", "EEXIST: " .. tostring(code))
    T.ok(n:map_set("self", addr))

    local got = {}
    local kept_msg
    local deferred = {}
    local echo = assert(n:service(function(msg)
        got[#got + 1] = { msg:kind(), msg:data(), msg:target() }
        kept_msg = msg
        local d = msg:data()
        if msg:kind() == "send" then return end
        T.ok(msg:remaining() > 0, "remaining ms")
        if d == "boom" then
            error("handler exploded")
        elseif d == "silent" then
            return -- no reply: ENOREPLY
        elseif d == "fail" then
            msg:fail("custom failure")
        elseif d == "later" then
            deferred[#deferred + 1] = assert(msg:defer())
        else
            T.ok(msg:reply("echo:" .. d))
            local again, _, c2 = msg:reply("twice")
            T.eq(c2, "ESTATE", "second reply refused")
            T.eq(again, nil)
        end
    end))
    T.ok(math.type(echo) == "integer" and echo > 0, "service handle")
    T.ok(n:register("@echo", echo), "register @echo")
    T.ok(n:register(".echo", echo), "register .echo")
    T.ok(n:register("@echo", echo), "same pair again is fine")
    T.eq(n:lookup("@echo"), echo, "lookup")
    T.eq(n:lookup("echo"), echo, "bare = @")
    r, msg, code = n:lookup("@nobody")
    T.eq(code, "ENOSERVICE")
    local other = assert(n:service(function() end))
    r, msg, code = n:register("@echo", other)
    T.eq(code, "EEXIST", "name taken")

    -- async calls to ourselves: served by the same poll loop
    local results = {}
    local function acall(target, data, timeout)
        local slot = {}
        results[#results + 1] = slot
        assert(n:call_async("self", target, data, timeout, function(rep, m, c)
            slot.done, slot.rep, slot.msg, slot.code = true, rep, m, c
        end))
        return slot
    end
    local a = acall("@echo", "hi")
    local b = acall(".echo", "dot")
    local c = acall(string.format(":%08x", echo), "hex")
    local d = acall("@echo", "fail")
    local e = acall("@echo", "silent")
    local f = acall("@nobody", "x")
    local g = acall("@echo", "later")
    local h = acall("@echo", "x\0y")
    T.ok(pump({ n }, function() return #deferred == 1 end), "deferred taken")
    T.raises("after its handler returned", kept_msg.data, kept_msg)
    T.ok(deferred[1]:pending(), "pending reply")
    T.ok(deferred[1]:send("answered later"), "deferred send")
    T.eq(deferred[1]:pending(), false)
    T.raises("already answered", deferred[1].send, deferred[1], "x")
    T.ok(pump({ n }, function()
        for _, s in ipairs(results) do if not s.done then return false end end
        return true
    end), "all calls ended")
    T.eq(a.rep, "echo:hi", "@name call")
    T.eq(b.rep, "echo:dot", ".name call")
    T.eq(c.rep, "echo:hex", ":hex call")
    T.eq(d.code, "EHANDLER") T.has(d.msg, "custom failure")
    T.eq(e.code, "ENOREPLY", "no reply")
    T.eq(f.code, "ENOSERVICE") T.has(f.msg, "nobody")
    T.eq(g.rep, "answered later", "deferred reply")
    T.eq(h.rep, "echo:x\0y", "binary payload")

    -- a handler error: the caller gets it and poll() re-raises it
    local boom = acall("@echo", "boom")
    local raised
    for _ = 1, 200 do
        local ok, err = pcall(n.poll, n, 10)
        if not ok then raised = err break end
    end
    T.has(raised, "handler exploded")
    T.ok(pump({ n }, function() return boom.done end), "boom ended")
    T.eq(boom.code, "EHANDLER") T.has(boom.msg, "handler exploded")

    -- a callback error is re-raised by poll too
    assert(n:call_async("self", "@echo", "cb", 0, function()
        error("callback exploded")
    end))
    raised = nil
    for _ = 1, 200 do
        local ok, err = pcall(n.poll, n, 10)
        if not ok then raised = err break end
    end
    T.has(raised, "callback exploded")

    -- send
    local before = #got
    T.ok(n:send("self", "@echo", "one-way"), "send")
    T.ok(pump({ n }, function() return #got > before end), "send arrives")
    T.eq(got[#got][1], "send") T.eq(got[#got][2], "one-way")

    -- the values variants (what the skynet layer uses): msg:take,
    -- reply:send_values, call_values / send_values, call_async's arg
    local taken = {}
    local vals = assert(n:service(function(msg)
        local data, reply, e1, e2 = msg:take()
        taken[#taken + 1] = { data, reply, e1, e2 }
        if reply then
            T.raises("cannot pack a function", reply.send_values, reply,
                print)
            T.ok(reply:pending(), "a failed pack leaves the reply pending")
            T.ok(reply:send_values(skc.unpack(data)))
            T.raises("already answered", reply.send_values, reply, 1)
        end
    end))
    T.ok(n:register("@vals", vals))
    local vres = {}
    assert(n:call_values("self", "@vals", 0, function(tag, rep, m, c)
        vres[#vres + 1] = { tag, rep, m, c }
    end, "tag1", 1, "two", { 3 }))
    assert(n:call_async("self", "@vals", skc.pack(4), 0, function(tag, rep)
        vres[#vres + 1] = { tag, rep }
    end, "tag2"))
    T.raises("cannot pack a function", n.call_values, n, "self", "@vals", 0,
        print, nil, print)
    T.ok(n:send_values("self", "@vals", "s", 5), "send_values")
    T.raises("cannot pack a function", n.send_values, n, "self", "@vals",
        print)
    T.ok(pump({ n }, function() return #vres == 2 and #taken == 3 end),
        "values calls ended")
    table.sort(vres, function(x, y) return x[1] < y[1] end)
    T.eq(vres[1][1], "tag1", "arg passed first")
    local v1, v2, v3 = skc.unpack(vres[1][2])
    T.eq(v1, 1) T.eq(v2, "two") T.eq(v3[1], 3)
    T.eq(vres[2][1], "tag2") T.eq(skc.unpack(vres[2][2]), 4)
    local sent
    for _, t in ipairs(taken) do
        if t[2] == nil then sent = t end
    end
    T.ok(sent, "a send has no reply")
    T.eq(select(2, skc.unpack(sent[1])), 5, "send_values payload")

    -- query (blocking; the core answers it)
    T.eq(n:query("self", "echo", 1000), echo, "query")
    r, msg, code = n:query("self", "@nobody", 1000)
    T.eq(code, "ENOSERVICE", "query unknown")

    -- a blocking call to ourselves cannot be served: ETIMEDOUT
    r, msg, code = n:call("self", "@echo", "x", 200)
    T.eq(code, "ETIMEDOUT", "sync self call times out")
    T.has(msg, "self")

    -- unregister, destroy
    T.ok(n:unregister("@echo"), "unregister")
    r, msg, code = n:unregister("@echo")
    T.eq(code, "ENOSERVICE", "unregister twice")
    T.ok(n:service_destroy(other), "service_destroy")
    r, msg, code = n:service_destroy(other)
    T.eq(code, "ENOSERVICE", "destroy twice")

    -- errors naming the node
    T.ok(n:map_update { down = false, __nowaiting = true })
    r, msg, code = n:call("down", "@x", "", 500)
    T.eq(code, "ENODEDOWN") T.has(msg, "down")
    r, msg, code = n:call("ghost", "@x", "", 500)
    T.eq(code, "ENONODE") T.has(msg, "ghost")
    r, msg, code = n:send("down", "@x", "")
    T.eq(code, "ENODEDOWN", "send to a down node")
    T.raises("bad argument", n.call_async, n, "self", "@echo", "", 0, nil)
    T.raises("timeout", n.call, n, "self", "@echo", "", -5)
    T.raises("out of range", n.register, n, "@x", 0)
    T.ok(#logs > 0, "log lines delivered through poll")
end

-- Two nodes in one process ---------------------------------------------------------
do
    local dir = T.tmpdir()
    local a <close> = assert(skc.node { name = "a" })
    local b <close> = assert(skc.node { name = "b" })
    local url = "ipc://" .. dir .. "/b.ipc"
    T.eq(b:open(url), url, "ipc listen")
    T.ok(a:map_set("b", url))
    local h = assert(b:service(function(msg) msg:reply(msg:data():upper()) end))
    assert(b:register("@up", h))
    local done, rep
    assert(a:call_async("b", "@up", "abc", 2000, function(r) done, rep = true, r end))
    T.ok(pump({ a, b }, function() return done end), "cross-node call")
    T.eq(rep, "ABC")
    -- pending async call when its node is closed: callback dropped, no leak
    assert(a:call_async("b", "@up", "never polled", 2000, function()
        error("must not run")
    end))
    T.ok(a:close(), "close with a pending call")
    -- deferred reply outliving its node
    local keep
    local h2 = assert(b:service(function(msg) keep = msg:defer() end))
    assert(b:register("@keep", h2))
    local c <close> = assert(skc.node { name = "c" })
    assert(c:map_set("b", url))
    assert(c:call_async("b", "@keep", "", 2000, function() end))
    T.ok(pump({ b, c }, function() return keep ~= nil end), "deferred")
    T.ok(b:close())
    local r, _, code = keep:send("late")
    T.eq(r, nil, "reply after close")
    T.eq(code, "ECLOSED")
end

-- Peer health and groups: monitor, state, ping, map_set_group ---------------------
do
    local dir = T.tmpdir()
    -- heartbeats as the defaults (1 s x 3), given explicitly: shorter ones
    -- would declare b down whenever valgrind on a busy machine stalls it
    local a <close> = assert(skc.node { name = "a", heartbeat_ms = 1000,
        heartbeat_misses = 3 })
    local b = assert(skc.node { name = "b", heartbeat_ms = -1 })
    T.raises("heartbeat_ms", skc.node, { heartbeat_ms = -2 })
    T.raises("heartbeat_misses", skc.node, { heartbeat_misses = "x" })
    local url = "ipc://" .. dir .. "/b.ipc"
    T.eq(b:open(url), url)
    local events = {}
    T.ok(a:monitor(function(peer, state, reason, addr)
        events[#events + 1] = table.concat({ peer, state, reason, addr }, " ")
    end), "monitor")
    T.raises("function expected", a.monitor, a, 1)
    T.eq((a:peer_state("b")), "unknown", "not in the map yet")
    T.ok(a:map_update { b = url, x = "ipc://" .. dir .. "/nobody.ipc",
        g = { "b", "x" }, r = { "x", "b", policy = "roundrobin" } },
        "groups in map_update")
    T.eq(a:map_get("g"), '{"b","x"}', "group text")
    T.eq(a:map_get("r"), '{"x","b",policy="roundrobin"}')
    T.ok(a:map_set_group("g2", { "x", "b" }, "random"), "map_set_group")
    T.eq(a:map_get("g2"), '{"x","b",policy="random"}')
    T.ok(a:map_set_group("g3", { "b", policy = "roundrobin" }))
    T.eq(a:map_get("g3"), '{"b",policy="roundrobin"}', "policy field")
    local r, msg, code = a:map_set_group("g4", { "g" })
    T.eq(r, nil, "a group as a member") T.ok(code ~= nil) T.has(msg, "g4")
    r, msg, code = a:map_set_group("g4", {})
    T.eq(r, nil, "no members")
    T.raises("member 2 must be a node name", a.map_set_group, a, "g4",
        { "b", 2 })
    T.raises("cluster map group 'g5'", a.map_update, a,
        { g5 = { "b", weight = "1" } })
    T.eq(a:map_get("g4"), nil)
    local rtt
    assert(a:ping_async("g", 10000, function(v, m) rtt = v or m end))
    T.ok(pump({ a, b }, function() return rtt ~= nil end, 15000),
        "ping_async")
    T.ok(math.type(rtt) == "integer" and rtt > 0, "rtt in us: "
        .. tostring(rtt))
    local st, detail = a:peer_state("b")
    T.eq(st, "up") T.has(detail, url, "up")
    st, detail = a:peer_state("g")
    T.eq(st, "up", "group up") T.has(detail, "group (failover)")
    T.ok(pump({ a, b }, function() return (a:peer_state("x")) == "down" end,
        15000), "unreachable member down")
    T.raises("timeout must be", a.ping, a, "b", -1)
    r, msg, code = a:ping("ghost", 100)
    T.eq(code, "ENONODE", "ping unknown")
    T.ok(b:close())
    T.ok(pump({ a }, function()
        for _, e in ipairs(events) do
            if e:find("^b down reset") then return true end
        end
        return false
    end, 15000), "monitor: b down")
    T.has(table.concat(events, "\n"), "b up connected " .. url,
        "x down")
    T.eq((a:peer_state("b")), "down")
    T.ok(a:monitor(nil), "monitor off")
    -- a ping pending when its node is closed: dropped, no leak
    assert(a:ping_async("b", 2000, function() error("must not run") end))
end

collectgarbage()
collectgarbage()
T.cleanup()
T.finish()
