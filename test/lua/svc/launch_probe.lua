-- Started by test_launcher: prints what the config gave it, then stops.
local skynet = require "skynet"
local probe_mod = require "probe_mod" -- found through the config's lua_path
skynet.start(function()
    print("thread=" .. tostring(skynet.getenv("thread")))
    print("custom=" .. tostring(skynet.getenv("custom")))
    print("included=" .. tostring(skynet.getenv("included")))
    print("harbor=" .. tostring(skynet.getenv("harbor")))
    print("daemon=" .. tostring(skynet.getenv("daemon")))
    print("logger=" .. tostring(skynet.getenv("logger")))
    print("module=" .. probe_mod.answer)
    skynet.error("logged line")
    if skynet.getenv("probe_mode") == "exit" then
        skynet.exit() -- the last service exits: the process ends
    else
        skynet.abort()
    end
end)
