-- etcdnode.lua -- a skynet-style start service for test_etcd.py: a Lua
-- node whose cluster map is kept in etcd (config: cluster =
-- "etcd://host:port/prefix").  It serves the seed's simpledb as "@sdb",
-- calls the C and Python nodes it finds through etcd, and stops cleanly
-- (its lease revoked) when "@ctl" is called with "quit".  Config keys
-- (skynet.getenv): self_node, c_node, py_node.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    local me = skynet.getenv("self_node") or "lua1"
    local sdb = skynet.newservice("simpledb")
    cluster.register("sdb", sdb)
    cluster.register("ctl", skynet.self())
    skynet.dispatch("lua", function(_, _, cmd)
        if cmd == "quit" then
            skynet.retpack(true)
            -- after the reply has left
            skynet.timeout(10, function()
                skynet.error("ETCDNODE QUIT")
                skynet.kill(sdb)
                skynet.exit()
            end)
        else
            skynet.retpack(me)
        end
    end)
    cluster.open(me)
    skynet.error("ETCDNODE READY")
    skynet.error("C ECHO", cluster.call(skynet.getenv("c_node"), "@echo",
        "from lua"))
    skynet.error("PY ECHO", cluster.call(skynet.getenv("py_node"), "@echo",
        "from lua"))
    local node = require("skc.runtime").node()
    skynet.error("SOURCE", node:map_source())
    skynet.error("NAMES", table.concat(node:map_names(), ","))
end)
