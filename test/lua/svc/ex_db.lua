-- The db node of test_cluster_examples: does what skynet's
-- examples/cluster1.lua does (two listeners, a cluster name registered,
-- unregistered and registered again, a unique snax service), with the
-- addresses taken from the config (keys db_addr, db2_addr).
local skynet = require "skynet"
local cluster = require "skynet.cluster"
local snax = require "skynet.snax"

skynet.start(function()
    cluster.reload {
        db = skynet.getenv "db_addr",
        db2 = skynet.getenv "db2_addr",
    }
    local sdb = skynet.newservice("simpledb") -- registers "SIMPLEDB"
    cluster.register("sdb", sdb)
    cluster.unregister("sdb")
    cluster.register("sdb", sdb)
    print(skynet.call(sdb, "lua", "SET", "a", "foobar"))
    print(skynet.call(sdb, "lua", "SET", "b", "foobar2"))
    print(skynet.call(sdb, "lua", "GET", "a"))
    print(skynet.call(sdb, "lua", "GET", "b"))
    cluster.open "db"
    cluster.open "db2"
    snax.uniqueservice "ex_ping"
end)
