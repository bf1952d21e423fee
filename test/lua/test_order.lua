-- test_order -- two processes: `cluster.send` followed by `cluster.call`
-- from one node to another are handled in that order, as on skynet (issue
-- #13; docs/PROTOCOL.md, "Order of sends and calls").  The server is the
-- launcher running mp_server (its @sdb is the seed's simpledb); this
-- script sends `SET k i` and at once calls `GET k`, from several
-- coroutines on several keys, and every call must read i.
local T = require "testlib"
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local launcher = T.need_launcher()

local dir = T.tmpdir()
local mapfile = dir .. "/map.lua"
local ready = dir .. "/ready"
T.write(mapfile, string.format('srv = "ipc://%s/srv.ipc"\n', dir))
local config = dir .. "/config_srv"
T.write(config, string.format([[
thread = 2
logger = nil
harbor = 0
start = "mp_server"
luaservice = "%s/svc/?.lua"
cluster = "$MP_MAP"
readyfile = "$MP_READY"
node_name = "srv"
]], T.testdir))
local srvlog = dir .. "/server.log"
local server = T.spawn({ launcher, "run", config }, srvlog,
    { MP_MAP = mapfile, MP_READY = ready })

skynet.setenv("luaservice", T.testdir .. "/svc/?.lua")
skynet.setenv("cluster", mapfile)
skynet.setenv("logger", dir .. "/client.log")

local function body()
    cluster.set_timeout(10000)
    local up = false
    for _ = 1, 200 do -- at most 10 s
        if T.exists(ready) then up = true break end
        skynet.sleep(5)
    end
    T.ok(up, "server ready")

    -- the first pair goes out before the send connection is even up
    T.ok(cluster.send("srv", "@sdb", "SET", "first", "one"), "send")
    T.eq(cluster.call("srv", "@sdb", "GET", "first"), "one",
        "a call right after the first send reads its value")

    local workers, rounds, keys = 8, 250, 3
    local stale, pairs_done, left = 0, 0, workers
    local me = coroutine.running()
    for w = 1, workers do
        skynet.fork(function()
            for i = 1, rounds do
                local k = string.format("w%d.k%d", w, i % keys)
                cluster.send("srv", "@sdb", "SET", k, i)
                local got = cluster.call("srv", "@sdb", "GET", k)
                if got ~= i then
                    stale = stale + 1
                    if stale <= 5 then
                        print(string.format("stale: GET %s read %s after SET %d",
                            k, tostring(got), i))
                    end
                end
                pairs_done = pairs_done + 1
            end
            left = left - 1
            if left == 0 then skynet.wakeup(me) end
        end)
    end
    skynet.wait(me)
    T.eq(pairs_done, workers * rounds, "every pair done")
    T.eq(stale, 0, "no call read a value older than the send before it")
    T.kill(server)
end

T.skynet_main(body, 90)
local slog = T.read(srvlog) or ""
T.ok(not slog:find("did not arrive", 1, true),
    "the server never gave up waiting for a send")
if T.failures > 0 then
    io.stderr:write("--- server log ---\n", slog, "\n")
end
T.cleanup()
T.finish()
