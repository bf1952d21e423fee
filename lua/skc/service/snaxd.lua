-- snaxd -- the service that runs a snax service (skynet.snax): started as
-- `snaxd NAME`, it loads snax file NAME into its own globals and answers
-- "snax" messages by method id (see lua/skynet/snax.lua).  Found after the
-- config's luaservice path, as skynet finds its own service/ folder.
local skynet = require "skynet"
local snax = require "skynet.snax"

local name = tostring(...)
local methods = snax.load(name, _ENV)
SERVICE_NAME = name

local profile = {} -- method name -> { count = n, time = seconds }

local function account(m, t0)
    local p = profile[m.name]
    if not p then
        p = { count = 0, time = 0 }
        profile[m.name] = p
    end
    p.count = p.count + 1
    p.time = p.time + (skynet.hpc() - t0) / 1e9
end

local function answer(m, t0, ...)
    account(m, t0)
    skynet.ret(skynet.pack(...))
end

skynet.start(function()
    local running = false
    local function dispatcher(_, _, id, ...)
        local m = methods[id]
        if not m then
            error(string.format("snax %s: no method with id %s", name,
                tostring(id)))
        end
        if m.group == "system" then
            if m.name == "init" then
                assert(not running, "snax " .. name .. ": already started")
                if m.f then m.f(...) end
                running = true
                skynet.ret()
            elseif m.name == "exit" then
                assert(running, "snax " .. name .. ": not started")
                if m.f then m.f(...) end
                running = false
                skynet.ret()
                skynet.exit()
            elseif m.name == "profile" then
                skynet.ret(skynet.pack(profile))
            else
                error("snax " .. name .. ": hotfix is not supported by skc")
            end
            return
        end
        assert(running, "snax " .. name .. ": call init first")
        local t0 = skynet.hpc()
        if m.group == "accept" then
            m.f(...)
            account(m, t0)
        else
            answer(m, t0, m.f(...))
        end
    end
    skynet.dispatch("snax", dispatcher)
end)
