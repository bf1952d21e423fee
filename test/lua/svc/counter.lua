-- A unique service that counts how many times it was started.
local skynet = require "skynet"
STARTS = (STARTS or 0) + 1
skynet.start(function()
    skynet.sleep(5) -- make concurrent uniqueservice callers overlap
    skynet.dispatch("lua", function(_, _, cmd)
        if cmd == "starts" then
            skynet.retpack(STARTS)
        end
    end)
end)
