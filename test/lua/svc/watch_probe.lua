-- watch_probe -- a service for test_launcher: with cluster_watch = true it
-- rewrites its own map file and prints what cluster.on_reload reports (a
-- good edit, then a bad one), then ends the process.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local function write(text)
    local f = assert(io.open(skynet.getenv("cluster"), "w"))
    f:write(text)
    f:close()
end

skynet.start(function()
    local n = 0
    cluster.on_reload(function(ok, detail)
        n = n + 1
        print(string.format("RELOAD %d %s %s", n, tostring(ok), detail))
        if n == 1 then
            write("other = \n") -- a bad edit: reported, nothing applied
        else
            skynet.abort()
        end
    end)
    skynet.timeout(1000 * (tonumber(os.getenv("SKC_SYS_SLOW")) or 1),
        function()
            print("TIMEOUT")
            skynet.abort()
        end)
    write('other = "127.0.0.1:9"\n')
    print("WATCHING")
end)
