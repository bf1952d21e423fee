-- skynet.snax -- skynet's snax services over skc (docs/LUA.md).
--
-- A snax service is a Lua file on the config's `snax` path that defines
-- `response.name = function` (answered calls), `accept.name = function`
-- (one-way messages) and optionally `init(...)` / `exit(...)`.  It runs in
-- the service `snaxd` (lua/skc/service/snaxd.lua), started with the snax
-- file's name as its argument.  Messages carry a method id instead of the
-- method name: the system methods are 1 init, 2 exit, 3 hotfix, 4 profile;
-- then every accept and response function gets the next id in the order
-- the file defines them.  Both sides load the file to number its methods,
-- so a caller needs the service's source on its own `snax` path.

local skynet = require "skynet"
local R = require "skc.runtime"

local snax = {}

skynet.PTYPE_SNAX = 11
skynet.register_protocol {
    name = "snax",
    id = skynet.PTYPE_SNAX,
    pack = skynet.pack,
    unpack = skynet.unpack,
}

local SYSTEM = { "init", "exit", "hotfix", "profile" }
local SYSTEM_ID = {}
for id, name in ipairs(SYSTEM) do
    SYSTEM_ID[name] = id
end

-- Finds snax service `name` on the `snax` path; returns its chunk loaded
-- with environment G.
local function find(name, G)
    local path = skynet.getenv("snax")
    if not path then
        error("snax " .. name .. ": the config key 'snax' (where snax "
            .. "services are found, e.g. \"./service/?.lua\") is not set", 0)
    end
    local tried = {}
    for pattern in path:gmatch("[^;]+") do
        local file = pattern:gsub("%?", name)
        local f = io.open(file, "rb")
        if f then
            f:close()
            local chunk, err = loadfile(file, "bt", G)
            if not chunk then
                error("snax " .. name .. ": " .. tostring(err), 0)
            end
            return chunk
        end
        tried[#tried + 1] = "\n\tno file '" .. file .. "'"
    end
    error("snax " .. name .. ": not found on the snax path"
        .. table.concat(tried), 0)
end

-- Runs snax file `name` with environment G and returns its methods:
-- methods[id] = { id = , group = "system"|"accept"|"response", name = ,
-- f = function or nil }.  While the file runs, `accept` and `response`
-- number the functions assigned to them, assignments to init, exit,
-- hotfix and profile define the system methods, and other globals land
-- in G as usual.
function snax.load(name, G)
    local methods = {}
    for id, sname in ipairs(SYSTEM) do
        methods[id] = { id = id, group = "system", name = sname }
    end
    local function group(gname)
        local seen = {}
        return setmetatable({}, {
            __newindex = function(_, k, f)
                if type(k) ~= "string" then
                    error(string.format("snax %s: %s methods must have "
                        .. "string names", name, gname), 2)
                end
                if type(f) ~= "function" then
                    error(string.format("snax %s: %s.%s must be a function",
                        name, gname, k), 2)
                end
                if seen[k] then
                    error(string.format("snax %s: %s.%s is defined twice",
                        name, gname, k), 2)
                end
                seen[k] = true
                local id = #methods + 1
                methods[id] = { id = id, group = gname, name = k, f = f }
            end,
            __index = function(_, k)
                for _, m in ipairs(methods) do
                    if m.group == gname and m.name == k then
                        return m.f
                    end
                end
            end,
        })
    end
    local groups = { accept = group("accept"), response = group("response") }
    local chunk = find(name, G)
    local saved = getmetatable(G)
    local parent = saved and saved.__index
    setmetatable(G, {
        __index = function(_, k)
            local g = groups[k]
            if g then
                return g
            end
            if type(parent) == "function" then
                return parent(G, k)
            elseif parent then
                return parent[k]
            end
        end,
        __newindex = function(_, k, v)
            local id = SYSTEM_ID[k]
            if id then
                if type(v) ~= "function" then
                    error(string.format("snax %s: %s must be a function",
                        name, k), 2)
                end
                methods[id].f = v
            else
                rawset(G, k, v)
            end
        end,
    })
    local ok, err = xpcall(chunk, debug.traceback)
    setmetatable(G, saved)
    if not ok then
        error("snax " .. name .. ": " .. tostring(err), 0)
    end
    return methods
end

-- The method ids of snax service `name`: { name = , accept = { m = id },
-- response = { m = id }, system = { init = 1, ... } }.
local interfaces = {}

function snax.interface(name)
    local t = interfaces[name]
    if t then
        return t
    end
    -- Only the numbering is needed here: the file runs with `require`
    -- stubbed out, as in skynet, so loading it has no side effects.
    local G = setmetatable({ require = function() end }, { __index = _G })
    local methods = snax.load(name, G)
    t = { name = name, accept = {}, response = {}, system = {} }
    for id, m in ipairs(methods) do
        t[m.group][m.name] = id
    end
    interfaces[name] = t
    return t
end

local function methods_of(t, group, handle, send)
    return setmetatable({}, {
        __index = function(_, k)
            local id = t[group][k]
            if not id then
                error(string.format("snax %s: no %s method %s", t.name,
                    group == "accept" and "post (accept)"
                    or "req (response)", tostring(k)), 2)
            end
            return function(...)
                return send(handle, "snax", id, ...)
            end
        end,
    })
end

local object_mt = {
    __tostring = function(o)
        return string.format("[%s:%x]", o.type, o.handle)
    end,
}

local bound = setmetatable({}, { __mode = "v" }) -- handle -> object

-- snax.bind(handle, name): the object for a snax service `name` at
-- `handle` (a local handle, or a cluster proxy): obj.post.m(...) sends,
-- obj.req.m(...) calls.
function snax.bind(handle, name)
    local o = bound[handle]
    if o then
        if o.type ~= name then
            error(string.format("snax.bind: %s is a %s, not a %s",
                skynet.address(handle), o.type, tostring(name)), 2)
        end
        return o
    end
    local t = snax.interface(name)
    o = setmetatable({
        type = name,
        handle = handle,
        post = methods_of(t, "accept", handle, skynet.send),
        req = methods_of(t, "response", handle, skynet.call),
    }, object_mt)
    bound[handle] = o
    return o
end

-- Starts a new snaxd for `name` and runs its init(...); returns the
-- handle.
function snax.rawnewservice(name, ...)
    local t = snax.interface(name)
    local handle = skynet.newservice("snaxd", name)
    skynet.call(handle, "snax", t.system.init, ...)
    return handle
end

function snax.newservice(name, ...)
    return snax.bind(snax.rawnewservice(name, ...), name)
end

local function manager(what, cmd, name, ...)
    local handle, err = skynet.call(".service", "lua", cmd, "snaxd", name,
        ...)
    if not handle then
        error(string.format("snax.%s %s: %s", what, tostring(name),
            tostring(err)), 3)
    end
    return snax.bind(handle, name)
end

function snax.uniqueservice(name, ...)
    return manager("uniqueservice", "LAUNCH", name, ...)
end

function snax.globalservice(name, ...)
    return manager("globalservice", "GLAUNCH", name, ...)
end

function snax.queryservice(name)
    return manager("queryservice", "QUERY", name)
end

function snax.queryglobal(name)
    return manager("queryglobal", "GQUERY", name)
end

-- snax.kill(obj, ...): runs the service's exit(...), then it exits.
function snax.kill(obj, ...)
    local t = snax.interface(obj.type)
    skynet.call(obj.handle, "snax", t.system.exit, ...)
end

-- The running snax service's own object.
function snax.self()
    local env = R.service_env()
    local name = env and rawget(env, "SERVICE_NAME")
    if not name then
        error("snax.self: not called from a snax service", 2)
    end
    return snax.bind(skynet.self(), name)
end

function snax.exit(...)
    snax.kill(snax.self(), ...)
end

-- In a snax service: take calls and sends from other nodes (which arrive
-- as "lua" messages) as snax messages.
function snax.enablecluster()
    local dispatcher = skynet.dispatch("snax")
    if not dispatcher then
        error("snax.enablecluster: not called from a snax service", 2)
    end
    skynet.dispatch("lua", dispatcher)
end

function snax.hotfix()
    error("snax.hotfix: not supported by skc", 2)
end

function snax.printf(fmt, ...)
    skynet.error(string.format(fmt, ...))
end

function snax.profile_info(obj)
    local t = snax.interface(obj.type)
    return skynet.call(obj.handle, "snax", t.system.profile)
end

return snax
