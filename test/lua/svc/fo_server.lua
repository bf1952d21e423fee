-- A member of the group in test_failover, run by `skc run CONFIG`: opens
-- the map entry named by the config key `node_name`, answers "@who" with
-- that name (and the heartbeat keys it was started with), and writes
-- "ready" to the config key `readyfile`.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    local name = skynet.getenv("node_name")
    cluster.register("who", skynet.self())
    skynet.dispatch("lua", function(_, _, cmd)
        if cmd == "config" then
            skynet.retpack(skynet.getenv("cluster_heartbeat_ms"),
                skynet.getenv("cluster_heartbeat_misses"))
        else
            skynet.retpack(name)
        end
    end)
    cluster.open(name)
    local f = assert(io.open(skynet.getenv("readyfile"), "w"))
    f:write("ready\n")
    f:close()
    skynet.error(name .. " ready")
end)
