-- "@stock" of test_cli.py's Lua node: ADD item n, GET item (fails for an
-- item never added, as "no such item <item>").
local skynet = require "skynet"

local stock = {}

skynet.start(function()
    skynet.dispatch("lua", function(_, _, cmd, item, n)
        if cmd == "ADD" then
            stock[item] = (stock[item] or 0) + n
            skynet.retpack(stock[item])
        elseif cmd == "GET" then
            if stock[item] == nil then
                error("no such item " .. tostring(item))
            end
            skynet.retpack(stock[item])
        else
            error("unknown command " .. tostring(cmd))
        end
    end)
end)
