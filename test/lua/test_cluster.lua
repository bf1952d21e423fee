-- test_cluster -- skynet.cluster in one process: the node calls itself over
-- its own listener (as the seed's gate does), proxies, names, query, map
-- reloads, __nowaiting, timeouts and the error texts.
local T = require "testlib"
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local dir = T.tmpdir()
local url = "ipc://" .. dir .. "/me.ipc"
local mapfile = dir .. "/map.lua"
T.write(mapfile, string.format('me = %q\n', url))
skynet.setenv("luaservice", T.testdir .. "/svc/?.lua")
skynet.setenv("cluster", mapfile)
skynet.setenv("logger", dir .. "/log.txt")

local function body()
    T.eq(cluster.open("me"), "me", "open by name")
    local echo = skynet.newservice("echo_svc", "e")
    cluster.register("echo", echo)

    -- call by @name, by handle, by .name ------------------------------------
    local a, b = cluster.call("me", "@echo", "echo", 1, "two")
    T.eq(a, 1) T.eq(b, "two")
    T.eq(cluster.call("me", echo, "name"), "e", "call by numeric handle")
    T.eq(cluster.call("me", skynet.address(echo), "name"), "e", "by :hex")
    skynet.name(".echo", echo)
    T.eq(cluster.call("me", ".echo", "name"), "e", "call by .name")
    T.eq(cluster.call("me", "echo", "name"), "e", "bare name = @name")
    local big = string.rep("0123456789", 50000)
    T.eq(cluster.call("me", "@echo", "echo", big), big, "500 kB round trip")

    -- proxies ---------------------------------------------------------------
    local p = cluster.proxy("me", "@echo")
    T.ok(math.type(p) == "integer", "proxy is an address")
    T.eq(cluster.proxy("me@echo"), p, "node@name form, cached")
    T.eq(skynet.call(p, "lua", "name"), "e", "skynet.call through a proxy")
    local pdot = cluster.proxy("me.echo")
    T.eq(skynet.call(pdot, "lua", "name"), "e", "node.name form")
    local pnum = cluster.proxy("me", tostring(echo))
    T.eq(skynet.call(pnum, "lua", "name"), "e", "numeric name = handle")
    local before = skynet.call(echo, "lua", "count")
    skynet.send(p, "lua", "inc")
    T.ok(cluster.send("me", "@echo", "inc"), "cluster.send")
    for _ = 1, 100 do
        if skynet.call(echo, "lua", "count") == before + 2 then break end
        skynet.sleep(1)
    end
    T.eq(skynet.call(echo, "lua", "count"), before + 2, "sends arrived")
    T.raises("node@name", cluster.proxy, "nonsense")
    T.raises("only 'lua'", skynet.call, p, "text", "x")

    -- serving while waiting, over the network: echo relays to itself
    -- through a proxy while it is inside a cluster call
    T.eq(cluster.call("me", "@echo", "relay", p, "echo", "nested"), "nested",
        "nested call served")

    -- query, register, unregister ---------------------------------------------
    T.eq(cluster.query("me", "echo"), echo, "query")
    T.raises({ "cluster.query me @nobody", "ENOSERVICE" }, cluster.query,
        "me", "nobody")
    local echo2 = skynet.newservice("echo_svc", "e2")
    T.raises({ "cluster.register echo", "EEXIST" }, cluster.register, "echo",
        echo2)
    cluster.register("second", echo2)
    cluster.register("renamed", echo2) -- replaces "second"
    T.eq(cluster.call("me", "@renamed", "name"), "e2")
    T.raises({ "@second", "ENOSERVICE" }, cluster.call, "me", "@second", "name")
    cluster.unregister("renamed")
    cluster.unregister("renamed") -- absent: no-op
    T.raises({ "cluster.call me @renamed", "ENOSERVICE" }, cluster.call, "me",
        "@renamed", "name")
    T.raises({ "cluster.register x", "ENOSERVICE" }, cluster.register, "x",
        0x7ffffff0)

    -- remote errors carry the handler's text --------------------------------
    T.raises({ "cluster.call me @echo", "kaboom", "EHANDLER" }, cluster.call,
        "me", "@echo", "err", "kaboom")
    T.raises({ "ENOREPLY" }, cluster.call, "me", "@echo", "noreply")
    -- a reply that is not MessagePack: a clear error, and nothing breaks
    T.raises({ "cluster.call me @echo", "not MessagePack", "EPROTO" },
        cluster.call, "me", "@echo", "raw", "\xc1\xc1")
    T.raises({ "cluster.call me @echo", "not MessagePack", "EPROTO" },
        cluster.call, "me", "@echo", "raw", "\x92\x01")
    T.eq(cluster.call("me", "@echo", "raw", "\x01\xa1x"), 1, "raw msgpack")
    -- values that cannot be packed raise in the caller, and in a
    -- handler's retpack they become the caller's error
    T.raises("cannot pack a function", cluster.call, "me", "@echo", "echo",
        print)
    T.raises("cannot pack a function", cluster.send, "me", "@echo", "inc",
        print)
    T.raises({ "cannot pack a function", "EHANDLER" }, cluster.call, "me",
        "@echo", "badpack")
    T.eq(cluster.call("me", "@echo", "retpack", 1, 2), 1, "still serving")
    local ok, perr = pcall(cluster.call, "me", "@echo", "err", "seed style")
    T.eq(ok, false, "pcall(cluster.call) pattern")
    T.has(perr, "seed style")

    -- map changes at run time -------------------------------------------------
    cluster.reload { down = false }
    T.raises({ "cluster.call down @echo", "ENODEDOWN" }, cluster.call, "down",
        "@echo", "name")
    local sok, serr = cluster.send("down", "@echo", "inc")
    T.eq(sok, false, "send to a down node does not raise")
    T.has(serr, "ENODEDOWN")
    -- a node not yet in the map: the call waits for the reload that adds it
    skynet.fork(function()
        skynet.sleep(20)
        cluster.reload { late = url }
    end)
    local t0 = skynet.now()
    T.eq(cluster.call("late", "@echo", "name"), "e", "waited for the map")
    T.ok(skynet.now() - t0 >= 15, "it did wait")
    -- __nowaiting: fails at once
    cluster.reload { __nowaiting = true }
    t0 = skynet.now()
    T.raises({ "cluster.call ghost @echo", "ENONODE" }, cluster.call, "ghost",
        "@echo", "name")
    T.ok(skynet.now() - t0 < 50, "failed at once")
    -- reload() re-reads the file
    T.write(mapfile, string.format('me = %q\nalias = %q\n', url, url))
    cluster.reload()
    T.eq(cluster.call("alias", "@echo", "name"), "e", "reload() from file")
    T.raises("expected a table", cluster.reload, "x")
    T.raises({ "cluster.reload", "EINVAL" }, cluster.reload, { bad = "::" })

    -- timeouts ----------------------------------------------------------------
    T.eq(cluster.set_timeout(300), 0, "set_timeout")
    t0 = skynet.now()
    T.raises({ "cluster.call me @echo", "ETIMEDOUT" }, cluster.call, "me",
        "@echo", "sleep", 200)
    T.ok(skynet.now() - t0 < 150, "ended by the deadline")
    cluster.set_timeout(0)
    -- the service is still alive afterwards
    T.eq(cluster.call("me", "@echo", "name"), "e")

    -- open forms --------------------------------------------------------------
    local host, port = cluster.open(0)
    T.eq(host, "0.0.0.0", "open(port) host")
    T.ok(math.type(port) == "integer" and port > 0, "open(0) picks a port")
    local u2 = cluster.open("127.0.0.1:0")
    T.ok(u2:match("^tcp://127%.0%.0%.1:%d+$"), "open(address) -> url")
    cluster.reload { viatcp = u2 }
    T.eq(cluster.call("viatcp", "@echo", "name"), "e", "second listener")
    T.raises({ "cluster.open nowhere", "ENONODE" }, cluster.open, "nowhere")
    T.raises({ "cluster.open down", "ENODEDOWN" }, cluster.open, "down")
    T.raises("expected a node name", cluster.open, {})
    T.raises("node name", cluster.call, nil, "@echo")
    T.raises("bad cluster address", cluster.call, "me", {})
    T.raises("name must be a non-empty string", cluster.snax, "me")
end

T.skynet_main(body, 30)
local log = T.read(dir .. "/log.txt") or ""
T.has(log, "Register [echo]", "Listen on " .. url)
T.cleanup()
T.finish()
