-- Uses a pure-Lua module: each service gets its own copy of it.
local skynet = require "skynet"
local m = require "testmod"
skynet.start(function()
    skynet.dispatch("lua", function()
        m.n = m.n + 1
        skynet.retpack(m.n)
    end)
end)
