-- The client node of test_cluster_examples: does what skynet's
-- examples/cluster2.lua does (a proxy with a 128 KiB key and a 100 KiB
-- value, a send through it, calls to db and db2, a large cluster.send,
-- db reloaded to false, cluster.snax on a node the map does not have yet),
-- then checks what skynet code also relies on: a remote ".service" QUERY,
-- cluster.snax with an address, a bare name, a snax post, a snax error
-- and snax.exit from another node.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    local proxy = cluster.proxy "db@sdb"
    local largekey = string.rep("K", 128 * 1024)
    local largevalue = string.rep("V", 100 * 1024)
    skynet.call(proxy, "lua", "SET", largekey, largevalue)
    local v = skynet.call(proxy, "lua", "GET", largekey)
    assert(largevalue == v)
    skynet.send(proxy, "lua", "PING", "proxy")

    skynet.fork(function()
        skynet.trace("cluster")
        print(cluster.call("db", "@sdb", "GET", "a"))
        print(cluster.call("db2", "@sdb", "GET", "b"))
        cluster.send("db2", "@sdb", "PING", "db2:longstring" .. largevalue)
    end)

    skynet.timeout(100, function()
        cluster.reload {
            db = false,
            db3 = skynet.getenv "db2_addr",
        }
        print(pcall(cluster.call, "db", "@sdb", "GET", "a"))
    end)
    cluster.reload { __nowaiting = false }
    local ping = cluster.snax("db3", "ex_ping") -- waits for db3
    print(ping.req.ping "hello")

    local h = cluster.call("db3", ".service", "QUERY", "snaxd", "ex_ping")
    print("service query", math.type(h))
    print(cluster.snax("db3", "ex_ping", h).req.ping "again")
    print(cluster.call("db2", "SIMPLEDB", "GET", "b"))
    print(ping.req.whoami())
    ping.post.hello()
    local ok, err = pcall(ping.req.error)
    print(ok, err:match("throw an error"), err:match("%((E%u+)%)$"))
    ping.post.exit("bye")
    print("done")
    skynet.abort()
end)
