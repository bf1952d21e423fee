-- vs_server.lua -- the server of bench/vs-skynet.sh.
--
-- Written for skc with skynet's API only, so that the same file runs on a
-- real skynet build and on skc's launcher.  One service, registered as the
-- cluster name "bench", listening on an ephemeral port that it logs as
-- "VS_LISTEN <port>" for the script.  Commands (skynet's "lua" protocol):
--   echo, x      -> x            (the small-call cases)
--   blob, n      -> n bytes      (the 64 KiB and 1 MiB reply cases)
--   count        (a send)        counts one-way messages and their arrival
--   sendstats    -> count, hpc of the last arrival

local skynet = require "skynet"
local cluster = require "skynet.cluster"

local count, last = 0, 0
local blobs = {}

skynet.start(function()
    skynet.dispatch("lua", function(_, _, cmd, x)
        if cmd == "echo" then
            skynet.retpack(x)
        elseif cmd == "count" then
            count = count + 1
            last = skynet.hpc()
        elseif cmd == "blob" then
            local b = blobs[x]
            if not b then
                b = string.rep("x", x)
                blobs[x] = b
            end
            skynet.retpack(b)
        elseif cmd == "sendstats" then
            skynet.retpack(count, last)
        else
            error("vs_server: unknown command " .. tostring(cmd))
        end
    end)
    cluster.register("bench")
    local _, port = cluster.open(0)
    skynet.error("VS_LISTEN " .. tostring(port))
end)
