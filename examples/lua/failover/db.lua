-- A database node: the seed's db.lua, for either db_main or db_backup
-- (the config key node_name says which).  Stores its own name under
-- "who", so the gate can show which node answered.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    local name = skynet.getenv("node_name")
    local sdb = skynet.newservice("simpledb")   -- ../skynet_cluster/
    cluster.register("sdb", sdb)
    skynet.call(sdb, "lua", "SET", "who", name)
    cluster.open(name)
    skynet.error("Database node " .. name .. " ready")
end)
