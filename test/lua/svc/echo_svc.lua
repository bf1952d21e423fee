-- A test service: commands exercise every reply style.
local skynet = require "skynet"
require "skynet.manager"

local name = ...          -- launch argument
local count = 0
SHARED_GLOBAL = SHARED_GLOBAL -- each service sees its own globals

local command = {}

function command.echo(...)
    skynet.ret(skynet.pack(...))
end

function command.retpack(...)
    skynet.retpack(...)
end

function command.name()
    skynet.retpack(name)
end

function command.inc()
    count = count + 1
end

function command.count()
    skynet.retpack(count)
end

function command.err(text)
    error(text)
end

function command.noreply()
end

-- retpacks a value that cannot be packed
function command.badpack()
    skynet.retpack(1, print)
end

-- replies with these bytes as they are (not MessagePack unless they are)
function command.raw(bytes)
    skynet.ret(bytes)
end

function command.later(ms)
    local resp = skynet.response()
    local before = resp("test")
    skynet.fork(function()
        skynet.sleep(ms or 1)
        resp(true, "late", before)
        -- a second answer is refused
        local ok = pcall(resp, true, "again")
        assert(not ok)
        assert(resp("test") == false)
    end)
end

function command.refuse()
    local resp = skynet.response()
    resp(false, "refused by service")
end

function command.setglobal(v)
    local old = MY_GLOBAL
    MY_GLOBAL = v
    skynet.retpack(old)
end

function command.sleep(cs)
    skynet.sleep(cs)
    skynet.retpack("slept", cs)
end

function command.relay(addr, ...)
    -- calls another service while other requests keep being served here
    skynet.retpack(skynet.call(addr, "lua", ...))
end

function command.exit()
    skynet.exit()
end

function command.init()
    skynet.retpack(INIT_RAN)
end

function command.self()
    skynet.retpack(skynet.self())
end

skynet.init(function()
    INIT_RAN = "yes" -- skynet.init functions run before the start function
end)

skynet.start(function()
    skynet.dispatch("lua", function(session, source, cmd, ...)
        local f = command[cmd]
        if not f then
            error("unknown command " .. tostring(cmd))
        end
        f(...)
    end)
end)
