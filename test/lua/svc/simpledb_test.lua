-- Like the seed's simpledb (GET/SET/PING), for the multi-process tests.
local skynet = require "skynet"
local db = {}
skynet.start(function()
    skynet.dispatch("lua", function(session, address, cmd, ...)
        cmd = cmd:upper()
        if cmd == "PING" then
            assert(session == 0)
            skynet.error("ping " .. tostring((...)))
            return
        elseif cmd == "GET" then
            skynet.retpack(db[(...)])
        elseif cmd == "SET" then
            local k, v = ...
            local last = db[k]
            db[k] = v
            skynet.retpack(last)
        else
            error("Unknown command " .. tostring(cmd))
        end
    end)
end)
