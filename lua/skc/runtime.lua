-- skc.runtime -- the coroutine scheduler behind the skynet layer.
--
-- One process = one skc node in caller-driven mode + this scheduler, all on
-- the Lua thread.  Every Lua service is an skc service (so remote nodes can
-- reach it by handle or cluster name) with its own environment table
-- ("its own globals").  Everything that waits -- a local or remote call, a
-- sleep, skynet.wait -- yields the running coroutine; the loop resumes it
-- when the reply, the timer or the wakeup arrives.  Incoming requests run
-- in fresh coroutines, so a service keeps serving while one of its
-- coroutines waits on another service.
--
-- The loop:  run ready coroutines -> fire due timers -> node:poll(until the
-- next timer).  node:poll() runs the skc handlers and async-call
-- completions, which only queue work here; coroutines are resumed by the
-- loop alone, never from inside poll.
--
-- This module talks to the core only through the `skc` C module.

local skc = require "skc"

local coroutine_create = coroutine.create
local coroutine_resume = coroutine.resume
local coroutine_running = coroutine.running
local coroutine_yield = coroutine.yield
local string_format = string.format
local table_pack = table.pack
local table_unpack = table.unpack

local R = {}

-- ---------------------------------------------------------------------
-- State (one scheduler per Lua state)
-- ---------------------------------------------------------------------

local node               -- the skc node
local booted = false
local aborted = false
local exit_code = 0
local services = {}      -- handle -> service record
local user_services = 0  -- live services that are not internal (proxies)
local names = {}         -- skynet names (".x" and "X") -> handle
local co_info = setmetatable({}, { __mode = "k" }) -- coroutine -> info
local waiting = {}       -- local-call session -> coroutine
local sleeping = {}      -- token -> { co = co }
local wait_tokens = {}   -- token -> co (skynet.wait)
local session_id = 0
local env = {}           -- skynet.getenv / setenv
local start_clock = skc.clock()
local start_time = math.floor(skc.time())
local logger = io.stdout
local call_timeout = 0   -- per-call default passed to skc (0 = node's)
local unique = {}        -- uniqueservice name -> { handle | waiters }
local protocols = {}
local proxies = {}       -- "node\0name" -> handle
local map_file           -- path given to map_load, for messages
local cluster_owner = {}   -- cluster name -> handle
local cluster_name_of = {} -- handle -> its cluster name (one per service)
local exported = {}        -- global name -> handle registered as "@name"
local monitors = {}        -- cluster.monitor: { id, svc, fn } in order
local reload_watchers = {} -- cluster.on_reload: { svc, fn } in order
local monitor_seq = 0

R.protocols = protocols

-- Run queue: a FIFO of coroutines and what to resume them with, in
-- parallel arrays so that queueing allocates nothing: up to three values
-- in rq_a/rq_b/rq_c (rq_n = their count), more packed in rq_a (rq_n = -1).
-- A call completion queues three (reply, message, code), a request two.
local rq_co, rq_n, rq_a, rq_b, rq_c = {}, {}, {}, {}, {}
local rq_head, rq_tail = 1, 0

local function ready(co, ...)
    local i = rq_tail + 1
    rq_tail = i
    rq_co[i] = co
    local n = select("#", ...)
    if n <= 3 then
        rq_n[i] = n
        rq_a[i], rq_b[i], rq_c[i] = ...
    else
        rq_n[i] = -1
        rq_a[i] = table_pack(...)
    end
end

-- Timers: a binary heap of { t = ms, seq, fn }.
local heap = {}
local heap_n = 0
local timer_seq = 0

local function heap_less(a, b)
    return a.t < b.t or (a.t == b.t and a.seq < b.seq)
end

local function timer_add(delay_ms, fn)
    timer_seq = timer_seq + 1
    local e = { t = skc.clock() + delay_ms, seq = timer_seq, fn = fn }
    heap_n = heap_n + 1
    local i = heap_n
    heap[i] = e
    while i > 1 do
        local p = i // 2
        if heap_less(heap[i], heap[p]) then
            heap[i], heap[p] = heap[p], heap[i]
            i = p
        else
            break
        end
    end
    return e
end

local function timer_pop()
    local top = heap[1]
    heap[1] = heap[heap_n]
    heap[heap_n] = nil
    heap_n = heap_n - 1
    local i = 1
    while true do
        local l, r, m = 2 * i, 2 * i + 1, i
        if l <= heap_n and heap_less(heap[l], heap[m]) then m = l end
        if r <= heap_n and heap_less(heap[r], heap[m]) then m = r end
        if m == i then break end
        heap[i], heap[m] = heap[m], heap[i]
        i = m
    end
    return top
end

-- ---------------------------------------------------------------------
-- Logging
-- ---------------------------------------------------------------------

local function log(handle, text)
    logger:write(string_format("[:%08x] %s\n", handle or 0, text))
end
R.log = log

local function current_handle()
    local info = co_info[coroutine_running()]
    return info and info.svc.handle or 0
end

function R.error(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do
        parts[i] = tostring((select(i, ...)))
    end
    log(current_handle(), table.concat(parts, " ", 1, n))
end

-- ---------------------------------------------------------------------
-- Addresses
-- ---------------------------------------------------------------------

function R.address(addr)
    if type(addr) == "number" then
        return string_format(":%08x", addr)
    end
    return tostring(addr)
end

-- Resolves a skynet address (handle, ".name", "NAME", ":hex") to a handle
-- of this process, or nil.
local function resolve(addr)
    if type(addr) == "number" then
        return math.tointeger(addr)
    end
    if type(addr) ~= "string" then
        return nil
    end
    if addr:sub(1, 1) == ":" then
        return tonumber(addr:sub(2), 16)
    end
    return names[addr]
end
R.resolve = resolve

-- ---------------------------------------------------------------------
-- Coroutines
-- ---------------------------------------------------------------------

local SUSPEND = setmetatable({}, { __name = "skc.runtime.suspend" })

-- Yields the running coroutine until a waker calls ready(co, ...); returns
-- what the waker passed.
local function suspend()
    return coroutine_yield(SUSPEND)
end

local function current(what)
    local co = coroutine_running()
    local info = co_info[co]
    if not info then
        error(what .. ": must run in a service coroutine (skynet.start, a "
            .. "dispatch function, skynet.fork ...), not at top level or in "
            .. "a coroutine of your own", 3)
    end
    return co, info
end
R.current = current

-- The global table of the running service (nil outside services).
function R.service_env()
    local info = co_info[coroutine_running()]
    return info and info.svc.env or nil
end

function R.self()
    local info = co_info[coroutine_running()]
    return info and info.svc.handle or nil
end

local function new_session()
    session_id = session_id + 1
    if session_id >= 0x7fffffff then
        session_id = 1
    end
    return session_id
end

-- Logs a remote reply that could not be sent (a closed node excepted).
local function reply_sent(req, r, err, code)
    if not r and code ~= "ECLOSED" then
        log(req.svc and req.svc.handle or 0,
            "reply failed: " .. tostring(err) .. " (" .. tostring(code)
            .. ")")
    end
end

-- Answers a request: ok = true with a packed payload, false with an error
-- text, or nil for "no reply" (a remote caller then gets ENOREPLY, a local
-- one the text).  req is { kind = "local"|"remote", ... }.  Returns true if
-- this answered it, false if it had been answered already.
local function answer(req, ok, data)
    if req.done then
        return false
    end
    req.done = true
    if req.svc then
        req.svc.requests[req] = nil
    end
    if req.kind == "local" then
        local co = waiting[req.session]
        if co then
            waiting[req.session] = nil
            ready(co, ok and true or false, data)
        end
    elseif ok == nil then
        req.reply:free()
    elseif ok then
        reply_sent(req, req.reply:send(data or ""))
    else
        reply_sent(req, req.reply:fail(tostring(data)))
    end
    return true
end
R.answer = answer

-- skynet.retpack(...): a remote request's reply is packed in C straight
-- into the reply (no string in between); anything else as skynet.ret.
function R.retpack(...)
    local _, info = current("skynet.retpack")
    local req = info.req
    if req and req.kind == "remote" and not req.done then
        -- Raises for a value that cannot be packed, before the request
        -- counts as answered (the coroutine's error then answers it).
        local r, err, code = req.reply:send_values(...)
        info.req = nil
        req.done = true
        if req.svc then
            req.svc.requests[req] = nil
        end
        reply_sent(req, r, err, code)
        return true
    end
    return R.ret(skc.pack(...))
end

-- Coroutines are reused, as skynet does: a finished one yields FINISHED
-- with its function's outcome and waits in `pool` for the next function
-- (resumed with fn, ...).  Creating a coroutine per request or fork was a
-- large part of the scheduler's cost per call.
local FINISHED = setmetatable({}, { __name = "skc.runtime.finished" })
local pool, pool_n = {}, 0
local POOL_MAX = 1024

-- xpcall's handler: the error and the traceback where it was raised.
local function catch(e)
    return { e, debug.traceback(tostring(e), 2) }
end

local co_run
local function co_next(ok, caught)
    return co_run(coroutine_yield(FINISHED, ok, caught))
end
co_run = function(fn, ...)
    return co_next(xpcall(fn, catch, ...))
end

local function spawn(svc, fn, opts, ...)
    local co
    if pool_n > 0 then
        co = pool[pool_n]
        pool[pool_n] = nil
        pool_n = pool_n - 1
    else
        co = coroutine_create(co_run)
    end
    local info = opts or {}
    info.svc = svc
    info.session = info.session or 0
    co_info[co] = info
    ready(co, fn, ...)
    return co
end

local function resume(co, n, a, b, c)
    local info = co_info[co]
    if not info or info.svc.exited or aborted then
        return
    end
    local rok, y, ok, caught
    if n == 0 then
        rok, y, ok, caught = coroutine_resume(co)
    elseif n == 1 then
        rok, y, ok, caught = coroutine_resume(co, a)
    elseif n == 2 then
        rok, y, ok, caught = coroutine_resume(co, a, b)
    elseif n == 3 then
        rok, y, ok, caught = coroutine_resume(co, a, b, c)
    else
        rok, y, ok, caught = coroutine_resume(co, table_unpack(a, 1, a.n))
    end
    local err, tb
    if not rok then
        -- The coroutine died (an error outside xpcall's protection).
        ok, err = false, y
        tb = debug.traceback(co, tostring(err))
    elseif y ~= FINISHED then
        return -- suspended: a waker holds it
    else
        if ok then
            err = caught -- the function's first result, as before
        else
            err, tb = caught[1], caught[2]
        end
        if pool_n < POOL_MAX then
            pool_n = pool_n + 1
            pool[pool_n] = co
        end
    end
    co_info[co] = nil
    local req = info.req
    if not ok then
        if not info.quiet then
            log(info.svc.handle, "error: " .. tb)
        end
        if req and not req.done then
            answer(req, false, tostring(err))
        end
    elseif req and not req.done then
        answer(req, nil, string_format(
            "service %s returned without replying (use skynet.ret or "
            .. "skynet.response)", R.address(info.svc.handle)))
    end
    if info.on_done then
        info.on_done(ok, err, tb)
    end
end

-- ---------------------------------------------------------------------
-- Protocols
-- ---------------------------------------------------------------------

protocols.lua = { name = "lua", id = 10, pack = skc.pack, unpack = skc.unpack }
protocols.text = {
    name = "text", id = 0,
    pack = function(...)
        local n = select("#", ...)
        if n == 0 then
            return ""
        elseif n == 1 then
            return tostring((...))
        end
        local t = table_pack(...)
        for i = 1, n do t[i] = tostring(t[i]) end
        return table.concat(t, " ", 1, n)
    end,
    unpack = function(msg) return msg end,
}

function R.register_protocol(p)
    assert(type(p) == "table" and type(p.name) == "string",
        "register_protocol: needs a table with a name")
    local cur = protocols[p.name]
    local q = {
        name = p.name, id = p.id,
        pack = p.pack or (cur and cur.pack),
        unpack = p.unpack or (cur and cur.unpack),
    }
    protocols[p.name] = q
    if p.dispatch then
        local info = co_info[coroutine_running()]
        if info then
            info.svc.dispatch[p.name] = p.dispatch
        end
    end
end

local function proto_of(name, what)
    local p = protocols[name]
    if not p then
        error(string_format("%s: unknown protocol '%s'", what, tostring(name)),
            3)
    end
    return p
end

-- ---------------------------------------------------------------------
-- Services
-- ---------------------------------------------------------------------

-- Modules a service shares with the whole process; anything else that
-- `require` finds in package.path is loaded again for each service, in the
-- service's environment (skynet gives each service its own Lua state).
local shared_modules = {
    string = true, table = true, math = true, io = true, os = true,
    coroutine = true, utf8 = true, debug = true, package = true, _G = true,
    skc = true,
}

local function is_shared(name)
    return shared_modules[name] or name == "skynet"
        or name:sub(1, 7) == "skynet." or name:sub(1, 4) == "skc."
end

local function service_require(svc, name)
    local v = svc.loaded[name]
    if v ~= nil then
        return v
    end
    if type(name) ~= "string" or is_shared(name) then
        return require(name)
    end
    local path = package.searchpath(name, package.path)
    if not path then
        return require(name) -- C modules and custom searchers: shared
    end
    local chunk, err = loadfile(path, "bt", svc.env)
    if not chunk then
        error(err, 2)
    end
    local r = chunk(name, path)
    if r == nil then
        r = svc.loaded[name] ~= nil and svc.loaded[name] or true
    end
    svc.loaded[name] = r
    return r
end

local function make_env(svc)
    local e = setmetatable({}, { __index = _G })
    e._G = e
    e.require = function(name)
        return service_require(svc, name)
    end
    return e
end

-- The skc handler of every Lua service: turns a network message into a
-- request for the scheduler.  Runs inside node:poll(); must not raise.
local deliver

local function make_handler(svc)
    return function(msg)
        if svc.exited then
            return -- the core answers ENOREPLY
        end
        local data, reply, err, code = msg:take()
        local m = { proto = "lua", session = 0, source = 0, data = data }
        if reply then
            m.session = new_session()
            m.req = { kind = "remote", reply = reply }
        elseif reply == false then
            log(svc.handle, "cannot defer a reply: " .. tostring(err)
                .. " (" .. tostring(code) .. ")")
            return
        end
        deliver(svc, m)
    end
end

local function new_service(name, internal)
    local svc = {
        name = name, internal = internal, dispatch = {}, loaded = {},
        requests = {}, backlog = {}, ready = false, exited = false,
        names = {},
    }
    local handle, err, code = node:service(make_handler(svc))
    if not handle then
        error(string_format("cannot create service %s: %s (%s)", name,
            tostring(err), tostring(code)), 3)
    end
    svc.handle = handle
    if not internal then
        svc.env = make_env(svc)
        user_services = user_services + 1
    end
    services[handle] = svc
    return svc
end

-- The body of a request's coroutine (a function, not a closure per
-- request).
local function serve(svc, m)
    if svc.raw then
        svc.raw(m, m.req)
        return
    end
    local f = svc.dispatch[m.proto]
    if not f then
        error(string_format("service %s has no dispatch function "
            .. "for protocol '%s'", R.address(svc.handle), m.proto))
    end
    local p = protocols[m.proto]
    f(m.session, m.source, p.unpack(m.data))
end

-- Runs one request (local or remote) in a coroutine of svc.
local function run_request(svc, m)
    local req = m.req
    if req then
        req.svc = svc
        svc.requests[req] = true
    end
    spawn(svc, serve, { req = req, session = m.session }, svc, m)
end

-- A service takes messages once its start function has returned, or
-- earlier for a protocol it already has a dispatch function for (as in
-- skynet, a service can serve while its start function waits).
deliver = function(svc, m)
    if not svc.ready and not svc.raw and not svc.dispatch[m.proto] then
        svc.backlog[#svc.backlog + 1] = m
        return
    end
    run_request(svc, m)
end

local function set_ready(svc)
    svc.ready = true
    local backlog = svc.backlog
    svc.backlog = {}
    for i = 1, #backlog do
        run_request(svc, backlog[i])
    end
end

local function exit_service(svc)
    if svc.exited then
        return
    end
    svc.exited = true
    services[svc.handle] = nil
    if not svc.internal then
        user_services = user_services - 1
    end
    for n in pairs(svc.names) do
        if names[n] == svc.handle then
            names[n] = nil
        end
        if exported[n] == svc.handle then
            exported[n] = nil -- skc drops the service's names
        end
    end
    for i = #monitors, 1, -1 do
        if monitors[i].svc == svc then
            table.remove(monitors, i) -- the node's monitor stays set
        end
    end
    for i = #reload_watchers, 1, -1 do
        if reload_watchers[i].svc == svc then
            table.remove(reload_watchers, i)
        end
    end
    local cname = cluster_name_of[svc.handle]
    if cname then
        cluster_name_of[svc.handle] = nil
        cluster_owner[cname] = nil
    end
    if svc.proxy_key then
        proxies[svc.proxy_key] = nil
    end
    for uname, u in pairs(unique) do
        if u.handle == svc.handle then
            unique[uname] = nil
        end
    end
    local text = string_format("service %s (%s) exited",
        R.address(svc.handle), tostring(svc.name))
    local reqs = {}
    for req in pairs(svc.requests) do
        reqs[#reqs + 1] = req
    end
    for _, m in ipairs(svc.backlog) do
        if m.req then reqs[#reqs + 1] = m.req end
    end
    svc.backlog = {}
    for _, req in ipairs(reqs) do
        answer(req, nil, text)
    end
    if node and not node:closed() then
        node:service_destroy(svc.handle) -- queued messages get ENOREPLY
    end
    if svc.on_exit then
        svc.on_exit()
    end
    if user_services == 0 then
        node:wakeup()
    end
end

-- Starts service `name` from its file on the luaservice path.  cb(ok, err)
-- runs when its start function has returned (or failed).  Returns the
-- handle at once.
local function service_path()
    return env.luaservice or "./?.lua;./service/?.lua"
end

-- skc's own services (snaxd), found after the luaservice path, as skynet
-- finds its service/ folder: the folder `service` beside this file.
local builtin_path = (function()
    local me = package.searchpath("skc.runtime", package.path)
    local dir = me and me:match("^(.*)[/\\][^/\\]*$")
    return dir and dir .. "/service/?.lua" or nil
end)()

-- skynet hands a new service its arguments as one string, joined with
-- spaces and split at white space: strings and numbers only.
local function service_args(name, args)
    local parts = {}
    for i = 1, args.n do
        local v = args[i]
        local t = type(v)
        if t ~= "string" and t ~= "number" then
            error(string_format("newservice %s: argument #%d is a %s (a "
                .. "service's arguments are strings, as in skynet: pass "
                .. "strings or numbers)", name, i, t), 4)
        end
        parts[i] = tostring(v)
    end
    local argv = {}
    for word in table.concat(parts, " "):gmatch("%S+") do
        argv[#argv + 1] = word
    end
    argv.n = #argv
    return argv
end

local function launch(name, args, cb)
    local path, err = package.searchpath(name, service_path())
    if not path and builtin_path then
        path = package.searchpath(name, builtin_path)
    end
    if not path then
        error(string_format("newservice %s: service not found in "
            .. "luaservice path%s", name, err), 3)
    end
    args = service_args(name, args)
    local svc = new_service(name, false)
    local chunk, lerr = loadfile(path, "bt", svc.env)
    if not chunk then
        exit_service(svc)
        error(string_format("newservice %s: %s", name, lerr), 3)
    end
    svc.env.SERVICE_NAME = name
    log(svc.handle, "LAUNCH " .. name
        .. (args.n > 0 and " " .. table.concat(args, " ") or ""))
    spawn(svc, function()
        chunk(table_unpack(args, 1, args.n))
        for _, f in ipairs(svc.inits or {}) do
            f()
        end
        if svc.start then
            svc.start()
        end
    end, {
        quiet = true,
        on_done = function(ok, e, tb)
            if ok then
                set_ready(svc)
            else
                log(svc.handle, "init service failed: " .. tostring(tb))
                exit_service(svc)
                e = tostring(e)
            end
            if cb then
                cb(ok, svc.handle, e)
            end
        end,
    })
    return svc.handle
end

-- ---------------------------------------------------------------------
-- Public operations (called from the skynet layer)
-- ---------------------------------------------------------------------

function R.start(fn)
    local info = co_info[coroutine_running()]
    if not info then
        return R.run_main(fn)
    end
    info.svc.start = fn
end

function R.init(fn)
    local info = co_info[coroutine_running()]
    if not info then
        error("skynet.init: must be called from a service", 2)
    end
    local svc = info.svc
    svc.inits = svc.inits or {}
    svc.inits[#svc.inits + 1] = fn
end

function R.newservice(name, ...)
    local co = current("skynet.newservice")
    launch(name, table_pack(...), function(ok, handle, err)
        ready(co, ok, handle, err)
    end)
    local ok, handle, err = suspend()
    if not ok then
        error(string_format("newservice %s failed: %s", name, tostring(err)),
            2)
    end
    return handle
end

-- Unique services, by key: "name" for skynet.uniqueservice(name),
-- "@name" for the global form uniqueservice(true, name) (a process is a
-- standalone skynet node: its global names are its own), "snaxd.name" and
-- "@snaxd.name" for snax.  unique[key] = { handle = h } once started, or
-- { waiters = {...} } while starting or awaited.

-- Waits (coroutine co) until the unique service u is started; raises
-- its start error at the caller of uniqueservice/queryservice.
local function await_unique(u, co)
    u.waiters[#u.waiters + 1] = co
    local ok, h, err = suspend()
    if not ok then
        error(err, 0)
    end
    return h
end

-- Returns the handle of unique service `key`, starting it with
-- starter(...) (in the calling coroutine) if nobody has.
local function unique_launch(what, key, starter, ...)
    local co = current(what)
    local u = unique[key]
    if u then
        if u.handle then
            return u.handle
        end
        if u.starting then
            return await_unique(u, co)
        end
    else
        u = { waiters = {} }
        unique[key] = u
    end
    u.starting = true
    local ok, h = pcall(starter, ...)
    local waiters = u.waiters
    u.waiters = {}
    u.starting = nil
    if ok then
        u.handle = h
    else
        unique[key] = nil
    end
    for _, w in ipairs(waiters) do
        ready(w, ok, ok and h or nil, (not ok) and h or nil)
    end
    if not ok then
        error(h, 0) -- h says which service failed, and why
    end
    return h
end
R.unique_launch = unique_launch

-- Waits until unique service `key` has started; returns its handle.
local function unique_query(what, key)
    local co = current(what)
    local u = unique[key]
    if u and u.handle then
        return u.handle
    end
    if not u then
        u = { waiters = {} }
        unique[key] = u
    end
    return await_unique(u, co)
end
R.unique_query = unique_query

local function unique_args(what, name, ...)
    if name == true then
        name = ...
        if type(name) ~= "string" then
            error(string_format("%s(true, name): name must be a string, got "
                .. "%s", what, tostring(name)), 3)
        end
        return "@" .. name, name, select(2, ...)
    end
    if type(name) ~= "string" then
        error(string_format("%s: name must be a string (or true for the "
            .. "global form), got %s", what, tostring(name)), 3)
    end
    return name, name, ...
end

-- skynet.uniqueservice(name, ...) / uniqueservice(true, name, ...)
local function start_unique(key, name, ...)
    return unique_launch("skynet.uniqueservice", key, R.newservice, name,
        ...)
end

function R.uniqueservice(...)
    return start_unique(unique_args("skynet.uniqueservice", ...))
end

function R.queryservice(...)
    local key = unique_args("skynet.queryservice", ...)
    return unique_query("skynet.queryservice", key)
end

function R.exit()
    local co, info = current("skynet.exit")
    exit_service(info.svc)
    coroutine_yield(SUSPEND) -- never resumed: the service is gone
end

function R.kill(addr)
    local h = resolve(addr)
    local svc = h and services[h]
    if not svc then
        return false
    end
    exit_service(svc)
    local info = co_info[coroutine_running()]
    if info and info.svc == svc then
        coroutine_yield(SUSPEND)
    end
    return true
end

function R.abort(code)
    aborted = true
    if code then
        exit_code = code
    end
    if node and not node:closed() then
        node:wakeup()
    end
    if co_info[coroutine_running()] then
        coroutine_yield(SUSPEND)
    end
end

function R.dispatch(proto, fn)
    local _, info = current("skynet.dispatch")
    local svc = info.svc
    local old = svc.dispatch[proto]
    if fn ~= nil then
        svc.dispatch[proto] = fn
    end
    return old
end

-- Cluster names (cluster.register) and skynet's global names (bare,
-- skynet.register "SIMPLEDB") both answer the wire's "@name" target: a
-- bare target such as cluster.call("db", "SIMPLEDB") travels as
-- "@SIMPLEDB" (skc's wire has no third namespace), and on a Lua node
-- "@name" finds the service cluster.register gave that name, else the one
-- skynet.register gave it -- on skynet the two live apart, and a bare
-- target reaches only the second.

-- Makes global name `name` answer "@name", unless a cluster name holds it.
local function export_global(name)
    if cluster_owner[name] then
        return
    end
    local h = names[name]
    if h and not services[h] then
        h = nil
    end
    local cur = exported[name]
    if cur == h then
        return
    end
    if cur then
        node:unregister("@" .. name)
        exported[name] = nil
    end
    if h and node:register("@" .. name, h) then
        exported[name] = h
    end
end

-- cluster.register: returns true, or nil, message, code.
function R.cluster_register(name, h)
    if cluster_owner[name] == h then
        return true
    end
    if cluster_owner[name] == nil and exported[name] then
        node:unregister("@" .. name) -- the cluster name takes precedence
        exported[name] = nil
    end
    local ok, err, code = node:register("@" .. name, h)
    if not ok then
        export_global(name)
        return nil, err, code
    end
    local old = cluster_name_of[h]
    if old then
        node:unregister("@" .. old)
        cluster_owner[old] = nil
        export_global(old)
    end
    cluster_name_of[h] = name
    cluster_owner[name] = h
    return true
end

-- cluster.unregister: returns the handle that had the name, or nil.
function R.cluster_unregister(name)
    local h = cluster_owner[name]
    if not h then
        return nil -- as in skynet, not an error
    end
    cluster_owner[name] = nil
    cluster_name_of[h] = nil
    node:unregister("@" .. name)
    export_global(name)
    return h
end

-- Names: ".local" names are also registered with skc, so remote nodes can
-- target ".name"; bare (global) names answer "@name" (above).
function R.name(name, addr)
    local h = resolve(addr)
    local svc = h and services[h]
    if not svc then
        error("skynet.name: unknown service " .. tostring(addr), 2)
    end
    if type(name) ~= "string" or #name == 0 or #name > 255 then
        error("skynet.name: bad name " .. tostring(name), 2)
    end
    local old = names[name]
    if old == h then
        return
    end
    if name:sub(1, 1) == "." then
        if old and services[old] then
            error(string_format("skynet.name: name %s already taken by %s",
                name, R.address(old)), 2)
        end
        local ok, err, code = node:register(name, h)
        if not ok then
            error(string_format("skynet.name %s: %s (%s)", name, err, code), 2)
        end
    end
    names[name] = h
    svc.names[name] = true
    if name:sub(1, 1) ~= "." then
        export_global(name)
    end
end

function R.register(name)
    local _, info = current("skynet.register")
    return R.name(name, info.svc.handle)
end

function R.localname(name)
    return names[name]
end

-- Local messages ------------------------------------------------------

local function local_target(addr, what)
    local h = resolve(addr)
    local svc = h and services[h]
    if not svc then
        error(string_format("%s: unknown service %s", what, R.address(addr)),
            3)
    end
    return svc
end

-- Runs an async node operation from a coroutine: start(cb) starts it with
-- the completion cb; the coroutine waits for cb's values.  Returns
-- value | nil, message, code.
local function await(what, start)
    local co = current(what)
    local ok, err, code = start(function(v, msg, ecode)
        ready(co, v, msg, ecode)
    end)
    if not ok then
        return nil, err, code
    end
    return suspend()
end

-- Remote (cluster) primitives: raw payloads in and out.  Both return
-- reply | nil, message, code.
-- The deadline of a cluster call: the call's own (cluster.call_timeout),
-- else the innermost cluster.with_timeout of the calling coroutine, else
-- the process-wide one (cluster.set_timeout), else the node's.  info:
-- the calling coroutine's co_info, when the caller has it already.
local function deadline_of(timeout, info)
    if timeout then
        return timeout
    end
    info = info or co_info[coroutine_running()]
    local scoped = info and info.timeout
    if scoped then
        return scoped
    end
    return call_timeout
end

-- "No deadline": 2e9 ms, about 23 days.  Not INT32_MAX: libskc adds a
-- grace period to a call's deadline in an int32 (lib/transport.c,
-- skci_link_send), so deadlines near INT32_MAX overflow there.
R.NO_DEADLINE = 2000000000

-- The completion of every cluster call is ready() itself, with the
-- waiting coroutine as its first argument: no closure per call.
function R.cluster_rawcall(peer, target, data, timeout)
    local co, info = current("cluster.call")
    local ok, err, code = node:call_async(peer, target, data,
        deadline_of(timeout, info), ready, co)
    if not ok then
        return nil, err, code
    end
    return suspend()
end

-- R.cluster_rawcall(peer, target, skc.pack(...), timeout), the values
-- packed in C.
function R.cluster_call(peer, target, timeout, ...)
    local co, info = current("cluster.call")
    local ok, err, code = node:call_values(peer, target,
        deadline_of(timeout, info), ready, co, ...)
    if not ok then
        return nil, err, code
    end
    return suspend()
end

-- cluster.query without blocking the process: the coroutine waits.
function R.cluster_query(peer, name, timeout)
    local ms = deadline_of(timeout)
    return await("cluster.query", function(cb)
        return node:query_async(peer, name, ms, cb)
    end)
end

-- cluster.ping without blocking the process: the coroutine waits.
-- Returns the round-trip time in microseconds | nil, message, code.
function R.cluster_ping(peer, timeout)
    local ms = deadline_of(timeout)
    return await("cluster.ping", function(cb)
        return node:ping_async(peer, ms, cb)
    end)
end

-- Peer monitors.  The node has one skc monitor, set with the first
-- R.monitor; it runs inside node:poll() and only spawns, for each report
-- and each monitor in registration order, a coroutine of the service that
-- registered it: fn(peer, "up" | "down", reason, addr).  So monitors run
-- in the scheduler like any request, may call and sleep, and never run
-- inside the core's callback.
local function on_peer_change(peer, state, reason, addr)
    for _, m in ipairs(monitors) do
        if not m.svc.exited then
            spawn(m.svc, m.fn, nil, peer, state, reason, addr)
        end
    end
end

function R.monitor(fn)
    local _, info = current("cluster.monitor")
    if #monitors == 0 then
        local ok, err, code = node:monitor(on_peer_change)
        if not ok then
            error(string_format("cluster.monitor: %s (%s)", tostring(err),
                tostring(code)), 3)
        end
    end
    monitor_seq = monitor_seq + 1
    monitors[#monitors + 1] = { id = monitor_seq, svc = info.svc, fn = fn }
    return monitor_seq
end

-- The map file changed on disk and was reloaded (cluster_watch = true):
-- each function registered with cluster.on_reload runs in a coroutine of
-- its service: fn(ok, detail) (detail: the file, or the error with
-- file:line; a bad edit changed nothing).
local function on_map_reload(ok, detail)
    for _, w in ipairs(reload_watchers) do
        if not w.svc.exited then
            spawn(w.svc, w.fn, nil, ok, detail)
        end
    end
end

function R.on_reload(fn)
    local _, info = current("cluster.on_reload")
    reload_watchers[#reload_watchers + 1] = { svc = info.svc, fn = fn }
end

-- Removes monitor `id`; true if there was one.  The last one removed
-- stops the node's reports.
function R.unmonitor(id)
    for i, m in ipairs(monitors) do
        if m.id == id then
            table.remove(monitors, i)
            if #monitors == 0 and node and not node:closed() then
                node:monitor(nil)
            end
            return true
        end
    end
    return false
end

-- Runs fn(...) with `ms` as the deadline of the cluster calls that this
-- coroutine makes meanwhile (nested scopes: the innermost wins).
function R.with_timeout(ms, fn, ...)
    local _, info = current("cluster.with_timeout")
    local old = info.timeout
    info.timeout = ms
    local r = table_pack(pcall(fn, ...))
    info.timeout = old
    if not r[1] then
        error(r[2], 0)
    end
    return table_unpack(r, 2, r.n)
end

function R.cluster_rawsend(peer, target, data)
    return node:send(peer, target, data)
end

function R.cluster_send(peer, target, ...)
    return node:send_values(peer, target, ...)
end

local function target_of(addr)
    if type(addr) == "number" then
        return string_format(":%08x", addr)
    end
    if type(addr) ~= "string" or #addr == 0 then
        error("bad cluster address " .. tostring(addr), 3)
    end
    local c = addr:sub(1, 1)
    if c == "@" or c == "." or c == ":" then
        return addr
    end
    return "@" .. addr
end
R.target_of = target_of

local function remote_error(what, peer, target, err, code)
    return string_format("%s %s %s: %s (%s)", what, peer, target,
        tostring(err), tostring(code))
end
R.remote_error = remote_error

function R.rawcall(addr, proto, msg)
    local co, info = current("skynet.call")
    local svc = local_target(addr, "skynet.call")
    if svc.proxy then
        if proto ~= "lua" and proto ~= "snax" then
            error("skynet.call: a cluster proxy forwards only 'lua' and "
                .. "'snax' messages", 2)
        end
        local p = svc.proxy
        local reply, err, code = R.cluster_rawcall(p.node, p.target, msg)
        if not reply then
            error(remote_error("cluster.call", p.node, p.target, err, code),
                2)
        end
        return reply
    end
    local session = new_session()
    waiting[session] = co
    deliver(svc, {
        proto = proto, session = session, source = info.svc.handle,
        data = msg, req = { kind = "local", session = session },
    })
    local ok, data = suspend()
    if not ok then
        error(string_format("skynet.call %s: %s", R.address(addr),
            tostring(data)), 2)
    end
    return data
end

function R.call(addr, proto, ...)
    local p = proto_of(proto, "skynet.call")
    local reply = R.rawcall(addr, proto, p.pack(...))
    return p.unpack(reply)
end

-- As in skynet, a send to an address with no service behind it (it has
-- exited, or never existed) is not an error: the message is dropped, with
-- a log line here.  Returns 0 (skynet's session of a send), or nil when
-- the message was dropped.
function R.rawsend(addr, proto, msg)
    local h = resolve(addr)
    local svc = h and services[h]
    if not svc then
        log(current_handle(), string_format("skynet.send: no service %s, "
            .. "message dropped", R.address(addr)))
        return nil
    end
    if svc.proxy then
        local p = svc.proxy
        local ok, err, code = node:send(p.node, p.target, msg)
        if not ok then
            log(current_handle(), remote_error("cluster.send", p.node,
                p.target, err, code))
            return nil
        end
        return 0
    end
    local info = co_info[coroutine_running()]
    deliver(svc, {
        proto = proto, session = 0, source = info and info.svc.handle or 0,
        data = msg,
    })
    return 0
end

function R.send(addr, proto, ...)
    local p = proto_of(proto, "skynet.send")
    return R.rawsend(addr, proto, p.pack(...))
end

function R.ret(msg)
    local _, info = current("skynet.ret")
    local req = info.req
    if not req then
        if info.session == 0 then
            return false -- a send: nobody to answer
        end
        error("skynet.ret: this request was already answered or handed to "
            .. "skynet.response", 2)
    end
    info.req = nil
    return answer(req, true, msg or "")
end

function R.response(pack)
    pack = pack or skc.pack
    local _, info = current("skynet.response")
    local req = info.req
    if not req then
        error("skynet.response: no request to answer in this coroutine (a "
            .. "send, or already answered)", 2)
    end
    info.req = nil
    local used = false
    return function(ok, ...)
        if ok == "TEST" or ok == "test" then
            return not req.done
        end
        if used then
            error("skynet.response: can't respond more than once", 2)
        end
        used = true
        if req.done then
            return false
        end
        if ok then
            local pok, data = pcall(pack, ...)
            if not pok then
                answer(req, false, data)
                error(data, 2)
            end
            return answer(req, true, data)
        end
        return answer(req, false, (...) ~= nil and tostring((...))
            or "response failed")
    end
end

-- Threads, time ---------------------------------------------------------

function R.fork(fn, ...)
    local _, info = current("skynet.fork")
    return spawn(info.svc, fn, nil, ...)
end

function R.timeout(ti, fn)
    local _, info = current("skynet.timeout")
    local svc = info.svc
    timer_add((ti or 0) * 10, function()
        if not svc.exited then
            spawn(svc, fn, nil)
        end
    end)
end

function R.sleep(ti, token)
    local co = current("skynet.sleep")
    token = token or co
    local w = { co = co }
    sleeping[token] = w
    timer_add((ti or 0) * 10, function()
        if sleeping[token] == w then
            sleeping[token] = nil
            ready(co)
        end
    end)
    local r = suspend()
    return r
end

function R.yield()
    local co = current("skynet.yield")
    ready(co)
    suspend()
end

function R.wait(token)
    local co = current("skynet.wait")
    token = token or co
    wait_tokens[token] = co
    suspend()
end

function R.wakeup(token)
    local co = wait_tokens[token]
    if co then
        wait_tokens[token] = nil
        ready(co, "BREAK")
        return true
    end
    local w = sleeping[token]
    if w then
        sleeping[token] = nil
        ready(w.co, "BREAK")
        return true
    end
    return false
end

function R.now()
    return (skc.clock() - start_clock) // 10
end

function R.starttime()
    return start_time
end

function R.time()
    return start_time + R.now() / 100
end

function R.getenv(key)
    return env[key]
end

function R.setenv(key, value)
    if env[key] ~= nil then
        error("skynet.setenv: key '" .. tostring(key) .. "' already set", 2)
    end
    if value ~= nil and type(value) ~= "string" then
        value = tostring(value)
    end
    env[key] = value
end

-- Cluster operations -------------------------------------------------------

function R.node()
    if not node then
        error("skc: the scheduler is not running (call this from a "
            .. "service: inside skynet.start)", 3)
    end
    return node
end

function R.set_call_timeout(ms)
    local old = call_timeout
    call_timeout = ms or 0
    return old
end

function R.proxy(peer, target)
    local key = peer .. "\0" .. target
    local h = proxies[key]
    if h and services[h] then
        return h
    end
    local svc = new_service("proxy " .. peer .. " " .. target, true)
    svc.proxy = { node = peer, target = target }
    svc.proxy_key = key
    -- A proxy also forwards what remote nodes send to its handle.
    svc.raw = function(m, req)
        if m.session == 0 or not req then
            node:send(peer, target, m.data)
            return
        end
        local reply, err, code = R.cluster_rawcall(peer, target, m.data)
        if reply then
            answer(req, true, reply)
        else
            answer(req, false, remote_error("cluster.call", peer, target,
                err, code))
        end
    end
    set_ready(svc)
    proxies[key] = svc.handle
    return svc.handle
end

-- The service manager, ".service" (skynet's service_mgr): answers
-- LAUNCH, QUERY, GLAUNCH, GQUERY and LIST from this process's services and
-- from other nodes (cluster.snax asks a node's ".service" for a snax
-- service).  Replies are skynet's: the handle, or nil and the error text.
local function manager_key(service_name, subname)
    local real = service_name
    if service_name:sub(1, 1) == "@" then
        real = service_name:sub(2)
    end
    if real == "snaxd" then
        if type(subname) ~= "string" then
            error("snaxd needs the name of a snax service", 0)
        end
        return service_name .. "." .. subname, real
    end
    return service_name, real
end

local manager_cmd = {}

function manager_cmd.LAUNCH(service_name, subname, ...)
    if type(service_name) ~= "string" then
        error("LAUNCH: service name must be a string", 0)
    end
    local key, real = manager_key(service_name, subname)
    if real == "snaxd" then
        local snax = require "skynet.snax"
        return unique_launch("LAUNCH", key, snax.rawnewservice, subname, ...)
    end
    return unique_launch("LAUNCH", key, R.newservice, real, subname, ...)
end

function manager_cmd.QUERY(service_name, subname)
    if type(service_name) ~= "string" then
        error("QUERY: service name must be a string", 0)
    end
    return unique_query("QUERY", (manager_key(service_name, subname)))
end

function manager_cmd.GLAUNCH(name, ...)
    return manager_cmd.LAUNCH("@" .. tostring(name), ...)
end

function manager_cmd.GQUERY(name, ...)
    return manager_cmd.QUERY("@" .. tostring(name), ...)
end

function manager_cmd.LIST()
    local list = {}
    for key, u in pairs(unique) do
        list[key] = u.handle and R.address(u.handle) or "Querying"
    end
    return list
end

local function start_manager()
    local svc = new_service(".service", true)
    svc.raw = function(m, req)
        local function serve(cmd, ...)
            local f = manager_cmd[cmd]
            if not f then
                return nil, "Invalid command " .. tostring(cmd)
            end
            local ok, r = pcall(f, ...)
            if ok then
                return r
            end
            return nil, tostring(r)
        end
        local ok, r, err = pcall(function()
            return serve(skc.unpack(m.data))
        end)
        if not ok then
            r, err = nil, tostring(r)
        end
        if req then
            answer(req, true, skc.pack(r, err))
        end
    end
    set_ready(svc)
    R.name(".service", svc.handle)
end

-- ---------------------------------------------------------------------
-- Boot and loop
-- ---------------------------------------------------------------------

local function node_log(level, text)
    log(0, "skc " .. level .. ": " .. text)
end

local function create_node()
    local opts = {
        log = node_log,
        log_level = env.skc_log_level or "warn",
    }
    if env.cluster_timeout then
        opts.call_timeout = math.tointeger(tonumber(env.cluster_timeout))
    end
    if env.max_msg_size then
        opts.max_msg_size = math.tointeger(tonumber(env.max_msg_size))
    end
    -- Peer health (docs/LUA.md): how often an idle link is pinged (ms;
    -- -1 = never) and after how many silent intervals its peer is down.
    -- Limits (docs/RELIABILITY.md): what peers can make this node hold.
    for key, opt in pairs({ cluster_heartbeat_ms = "heartbeat_ms",
            cluster_heartbeat_misses = "heartbeat_misses",
            cluster_max_mailbox = "max_mailbox",
            cluster_max_mailbox_bytes = "max_mailbox_bytes",
            cluster_max_queued_bytes = "max_queued_bytes",
            cluster_hello_timeout_ms = "hello_timeout_ms",
            cluster_idle_timeout_ms = "idle_timeout_ms",
            cluster_large_msg = "large_msg",
            cluster_channels = "channels" }) do
        if env[key] then
            local v = math.tointeger(tonumber(env[key]))
            if not v then
                error(string_format("config key %s: expected an integer, "
                    .. "got %s", key, env[key]), 0)
            end
            opts[opt] = v
        end
    end
    -- The map kept in etcd (docs/LUA.md): cluster = "etcd://host:port/
    -- prefix", or cluster_etcd = "http(s)://host:port" with the keys below.
    local etcd = env.cluster_etcd
    if env.cluster and env.cluster:match("^etcd://") then
        etcd = env.cluster
    end
    if etcd then
        opts.etcd = etcd
        opts.etcd_prefix = env.cluster_etcd_prefix
        opts.etcd_cafile = env.cluster_etcd_cafile
        opts.etcd_certfile = env.cluster_etcd_certfile
        opts.etcd_keyfile = env.cluster_etcd_keyfile
        opts.etcd_listen = env.cluster_listen
        if env.cluster_etcd_ttl then
            opts.etcd_ttl = math.tointeger(tonumber(env.cluster_etcd_ttl))
            if not opts.etcd_ttl then
                error("config key cluster_etcd_ttl: expected an integer, got "
                    .. env.cluster_etcd_ttl, 0)
            end
        end
        map_file = "etcd " .. etcd
    end
    -- Who may talk to this node (docs/SECURITY.md): the cluster cookie
    -- (a string, or a file readable by its owner only) and TLS files.
    for key, opt in pairs({ cluster_cookie = "cluster_cookie",
            cluster_cookie_file = "cluster_cookie_file",
            cluster_tls_cert = "tls_cert", cluster_tls_key = "tls_key",
            cluster_tls_ca = "tls_ca",
            cluster_tls_server_name = "tls_server_name" }) do
        opts[opt] = env[key]
    end
    if env.cluster_names_only then
        opts.names_only = env.cluster_names_only == "true"
    end
    local n, err, code = skc.node(opts)
    if not n then
        error("cannot create the skc node: " .. tostring(err) .. " ("
            .. tostring(code) .. ")", 0)
    end
    return n
end

function R.map_file()
    return map_file
end

local function boot(cfg)
    if booted then
        error("skc.runtime: already running", 3)
    end
    booted = true
    for k, v in pairs(cfg.env or {}) do
        if env[k] == nil then
            env[k] = type(v) == "string" and v or tostring(v)
        end
    end
    if env.logger and env.logger ~= "" then
        local f, err = io.open(env.logger, "a")
        if not f then
            error("cannot open logger file: " .. tostring(err), 0)
        end
        logger = f
    end
    logger:setvbuf("line")
    io.stdout:setvbuf("line")
    node = create_node()
    if env.cluster and not env.cluster:match("^etcd://") then
        local ok, err, code = node:map_load(env.cluster)
        if not ok then
            error(string_format("cluster map %s: %s (%s)", env.cluster,
                tostring(err), tostring(code)), 0)
        end
        map_file = env.cluster
        if env.cluster_watch == "true" then
            ok, err, code = node:map_watch(true, on_map_reload)
            if not ok then
                error(string_format("cluster_watch %s: %s (%s)", env.cluster,
                    tostring(err), tostring(code)), 0)
            end
        end
    end
    start_manager()
end

local MAX_WAIT_MS = 1000

local function loop()
    while not aborted do
        -- Everything queued now; things queued meanwhile wait for the next
        -- round, after a poll, so the network is never starved.
        local last = rq_tail
        while rq_head <= last and not aborted do
            local i = rq_head
            local co, n, a, b, c = rq_co[i], rq_n[i], rq_a[i], rq_b[i],
                rq_c[i]
            rq_co[i], rq_a[i], rq_b[i], rq_c[i] = nil, nil, nil, nil
            rq_head = i + 1
            resume(co, n, a, b, c)
        end
        if rq_head > rq_tail then
            rq_head, rq_tail = 1, 0 -- empty: restart at the array part
        end
        local now = skc.clock()
        while heap_n > 0 and heap[1].t <= now and not aborted do
            local e = timer_pop()
            e.fn()
        end
        if aborted or user_services == 0 then
            break
        end
        local wait
        if rq_head <= rq_tail then
            wait = 0
        elseif heap_n > 0 then
            wait = math.max(0, math.min(MAX_WAIT_MS, heap[1].t - skc.clock()))
        else
            wait = MAX_WAIT_MS
        end
        local ok, err = pcall(node.poll, node, wait)
        if not ok then
            log(0, "poll: " .. tostring(err))
        end
    end
end

local function shutdown()
    if node and not node:closed() then
        node:close()
    end
    if logger ~= io.stdout then
        logger:close()
        logger = io.stdout
    end
end

-- Runs a process from a config table (skynet's config keys, all strings):
-- starts service cfg.start (default "main") and loops until it and every
-- other service have exited, or skynet.abort().  Returns an exit code.
function R.run_config(cfg)
    boot({ env = cfg })
    local start = env.start or "main"
    local ok, err = pcall(launch, start, table_pack(), function(sok, _, e)
        if not sok then
            log(0, "bootstrap: start service " .. start .. " failed: "
                .. tostring(e))
            exit_code = 1
            R.abort(1)
        end
    end)
    if not ok then
        log(0, "bootstrap: " .. tostring(err))
        shutdown()
        return 1
    end
    loop()
    shutdown()
    return exit_code
end

-- skynet.start(fn) called outside any service (a plain `lua5.4 script`):
-- makes the script the "main" service, runs fn, and loops until every
-- service has exited or skynet.abort() is called.  Raises fn's error.
function R.run_main(fn, cfg)
    boot(cfg or {})
    local svc = new_service(arg and arg[0] or "main", false)
    local failure
    log(svc.handle, "LAUNCH " .. svc.name)
    svc.start = fn
    spawn(svc, function()
        svc.start()
    end, {
        quiet = true,
        on_done = function(ok, e, tb)
            if ok then
                set_ready(svc)
            else
                failure = tostring(tb or e)
                exit_service(svc)
                R.abort(1)
            end
        end,
    })
    loop()
    shutdown()
    if failure then
        error(failure, 0)
    end
    return exit_code
end

function R.exit_code()
    return exit_code
end

function R.stats()
    return {
        services = user_services,
        ready = rq_tail - rq_head + 1,
        timers = heap_n,
    }
end

return R
