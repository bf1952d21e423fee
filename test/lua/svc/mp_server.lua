-- The server node of test_multiprocess, run by `skc run CONFIG`: opens the
-- map entry named by the config key `node_name`, registers "@sdb", and
-- writes "ready" to the config key `readyfile`.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    local sdb = skynet.newservice("simpledb_test")
    cluster.register("sdb", sdb)
    cluster.register("server", skynet.self())
    skynet.dispatch("lua", function(_, _, cmd, ...)
        if cmd == "ping" then
            skynet.retpack("pong", skynet.getenv("node_name"))
        elseif cmd == "callback" then
            -- call the caller's node back while its call to us is pending
            local node, name = ...
            skynet.retpack(cluster.call(node, name, "echo", "called back"))
        elseif cmd == "sleep" then
            skynet.sleep((...))
            skynet.retpack("slept")
        elseif cmd == "env" then
            skynet.retpack(skynet.getenv((...)))
        end
    end)
    cluster.open(skynet.getenv("node_name"))
    local f = assert(io.open(skynet.getenv("readyfile"), "w"))
    f:write("ready\n")
    f:close()
    skynet.error("server ready")
end)
