-- The gate: calls the group "db" every 100 ms, and watches db_main with
-- cluster.monitor (the seed's section 8, "节点监控"), printing the seed's
-- lines when it goes down.  skc itself moves the calls to db_backup and
-- back (the seed's section 9, scenario 1: "新请求自动切换到备用节点").
local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    cluster.open("gate")

    local main_down = false
    cluster.monitor(function(node, state, reason)
        if node ~= "db_main" then
            return
        end
        if state == "down" and not main_down then
            main_down = true
            skynet.error("DB node unreachable!")
            skynet.error("Switch to backup node")
        elseif state == "up" and main_down then
            main_down = false
            skynet.error("DB node is back (" .. reason .. ")")
        end
    end)

    local rtt = cluster.ping("db")
    skynet.error(string.format("ping db: %.3f ms (%s)", rtt,
        select(2, cluster.state("db"))))

    skynet.fork(function()
        local last, n = nil, 0
        while true do
            n = n + 1
            local ok, who = pcall(cluster.call, "db", "@sdb", "GET", "who")
            if not ok then
                skynet.error(string.format("request %d failed: %s", n, who))
                last = nil
            elseif who ~= last or n % 10 == 0 then
                skynet.error(string.format("request %d answered by %s", n,
                    who))
                last = who
            end
            skynet.sleep(10) -- 100 ms
        end
    end)
end)
