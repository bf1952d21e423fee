-- test_multiprocess -- two processes: a server started with the launcher
-- (`skc run CONFIG`, config with $VAR expansion) and this script as the
-- client.  Calls, proxies, sends, a call back into the caller while its
-- call is pending, concurrency, a node killed with a call in flight, and a
-- restart that the client survives without doing anything.
local T = require "testlib"
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local launcher = T.need_launcher()

local dir = T.tmpdir()
local mapfile = dir .. "/map.lua"
local ready = dir .. "/ready"
local srvlog = dir .. "/server.log"
T.write(mapfile, string.format('srv = "ipc://%s/srv.ipc"\ncli = "ipc://%s/cli.ipc"\n',
    dir, dir))
local config = dir .. "/config_srv"
T.write(config, string.format([[
thread = 4
logger = nil
harbor = 0
bootstrap = "snlua bootstrap"	-- ignored by skc
start = "mp_server"
luaservice = "%s/svc/?.lua"
cluster = "$MP_MAP"
readyfile = "$MP_READY"
node_name = "srv"
]], T.testdir))
local envs = { MP_MAP = mapfile, MP_READY = ready }

local server
local starts = 0
local function start_server()
    os.remove(ready)
    starts = starts + 1
    server = T.spawn({ launcher, "run", config },
        starts == 1 and srvlog or srvlog .. starts, envs)
end

skynet.setenv("luaservice", T.testdir .. "/svc/?.lua")
skynet.setenv("cluster", mapfile)
skynet.setenv("logger", dir .. "/client.log")

local function wait_ready()
    for _ = 1, 200 do -- at most 10 s
        if T.exists(ready) then return true end
        skynet.sleep(5)
    end
    return false
end

local function body()
    cluster.set_timeout(3000)
    start_server()
    T.ok(wait_ready(), "server ready")

    local pong, name = cluster.call("srv", "@server", "ping")
    T.eq(pong, "pong") T.eq(name, "srv", "config key read by the server")
    T.eq(cluster.call("srv", "@server", "env", "cluster"), mapfile,
        "$VAR expanded in the config")
    T.eq(cluster.call("srv", "@server", "env", "thread"), "4",
        "numbers become strings")

    -- the seed's simpledb commands, by call and through a proxy
    local p = cluster.proxy("srv@sdb")
    T.eq(skynet.call(p, "lua", "SET", "k", { name = "Alice", level = 10 }), nil)
    T.same(skynet.call(p, "lua", "GET", "k"), { name = "Alice", level = 10 },
        "table through a proxy")
    T.same(cluster.call("srv", "@sdb", "SET", "k", "v2"),
        { name = "Alice", level = 10 })
    T.eq(cluster.call("srv", "@sdb", "GET", "k"), "v2")
    local h = cluster.query("srv", "sdb")
    T.ok(math.type(h) == "integer", "query a remote name")
    T.eq(cluster.call("srv", h, "GET", "k"), "v2", "call by queried handle")
    T.ok(cluster.send("srv", "@sdb", "PING", "hello"), "send")
    skynet.send(p, "lua", "PING", "via proxy")
    T.raises({ "cluster.call srv @sdb", "Unknown command NOPE", "EHANDLER" },
        cluster.call, "srv", "@sdb", "NOPE")

    -- the server calls us back while our call to it is pending
    local echo = skynet.newservice("echo_svc", "client")
    cluster.register("cli", echo)
    cluster.open("cli")
    T.eq(cluster.call("srv", "@server", "callback", "cli", "@cli"),
        "called back", "served while waiting on another node")

    -- many calls in flight at once
    local n, okc = 30, 0
    local me = coroutine.running()
    for i = 1, n do
        skynet.fork(function()
            cluster.call("srv", "@sdb", "SET", "key" .. i, i)
            if cluster.call("srv", "@sdb", "GET", "key" .. i) == i then
                okc = okc + 1
            end
            n = n - 1
            if n == 0 then skynet.wakeup(me) end
        end)
    end
    skynet.wait(me)
    T.eq(okc, 30, "30 concurrent call pairs")

    -- kill the server with a call in flight: the call ends with an error
    -- naming the node, within its deadline
    local inflight
    skynet.fork(function()
        inflight = { pcall(cluster.call, "srv", "@server", "sleep", 500) }
    end)
    skynet.sleep(20)
    T.kill(server, "KILL")
    for _ = 1, 100 do
        if inflight then break end
        skynet.sleep(5)
    end
    T.ok(inflight and inflight[1] == false, "in-flight call failed")
    local e = inflight and tostring(inflight[2]) or ""
    T.has(e, "cluster.call srv @server")
    T.ok(e:find("ECONNLOST") or e:find("EUNREACHABLE") or e:find("ETIMEDOUT"),
        "clear cause: " .. e)
    local t0 = skynet.now()
    local ok, err = pcall(cluster.call, "srv", "@sdb", "GET", "k")
    T.eq(ok, false, "node down")
    T.has(err, "cluster.call srv @sdb")
    T.ok(skynet.now() - t0 <= 400, "bounded by the deadline")

    -- restart: the next calls succeed, no action taken here
    start_server()
    T.ok(wait_ready(), "server restarted")
    local back
    for _ = 1, 50 do
        local rok, r = pcall(cluster.call, "srv", "@server", "ping")
        if rok then back = r break end
        skynet.sleep(5)
    end
    T.eq(back, "pong", "calls succeed after the restart")
    T.eq(cluster.call("srv", "@sdb", "GET", "k"), nil, "fresh server state")
    T.kill(server)
end

T.skynet_main(body, 60)
local slog = T.read(srvlog) or ""
T.has(slog, "server ready", "ping hello", "ping via proxy")
if T.failures > 0 then
    io.stderr:write("--- server log ---\n", slog, "\n")
end
T.cleanup()
T.finish()
