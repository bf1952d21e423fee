local skynet = require "skynet"
skynet.start(function()
    error("start failed on purpose")
end)
