-- skynet -- a skynet-compatible API over skc (see docs/LUA.md).
--
-- The functions keep skynet's names and calling conventions; what differs
-- (payloads are strings, local names, no snax ...) is listed in docs/LUA.md.
-- All the work is done by skc.runtime, the coroutine scheduler.

local skc = require "skc"
local R = require "skc.runtime"

local skynet = {
    -- skynet's protocol ids, for code that refers to them
    PTYPE_TEXT = 0,
    PTYPE_RESPONSE = 1,
    PTYPE_CLIENT = 3,
    PTYPE_LUA = 10,
    PTYPE_ERROR = 7,
    PTYPE_SNAX = 11,
}

-- Services and messages ----------------------------------------------------

skynet.start = R.start
skynet.init = R.init
skynet.dispatch = R.dispatch
skynet.register_protocol = R.register_protocol
skynet.call = R.call
skynet.rawcall = R.rawcall
skynet.send = R.send
skynet.rawsend = R.rawsend
skynet.ret = R.ret
skynet.response = R.response
skynet.newservice = R.newservice
skynet.uniqueservice = R.uniqueservice
skynet.queryservice = R.queryservice
skynet.exit = R.exit
skynet.kill = R.kill
skynet.abort = R.abort
skynet.self = R.self
skynet.address = R.address
skynet.localname = R.localname
skynet.error = R.error

-- skynet.retpack(...) = skynet.ret(skynet.pack(...))
skynet.retpack = R.retpack

-- Payloads are Lua strings (skynet uses a pointer and a size): pack returns
-- one string, unpack/tostring take one (a size argument is ignored).
function skynet.pack(...)
    return skc.pack(...)
end

function skynet.unpack(msg, sz)
    if sz ~= nil and type(msg) == "string" and sz < #msg then
        msg = msg:sub(1, sz)
    end
    return skc.unpack(msg)
end

function skynet.tostring(msg, sz)
    if sz ~= nil and sz < #msg then
        return msg:sub(1, sz)
    end
    return msg
end

skynet.packstring = skynet.pack
skynet.trash = function() end

-- Names: ".name" is a local name (also reachable as ".name" by remote
-- nodes), any other string is a process-wide name.
skynet.register = R.register
skynet.name = R.name

-- Threads and time ---------------------------------------------------------

skynet.fork = R.fork
skynet.timeout = R.timeout
skynet.sleep = R.sleep
skynet.yield = R.yield
skynet.wait = R.wait
skynet.wakeup = R.wakeup
skynet.now = R.now
skynet.time = R.time
skynet.starttime = R.starttime

-- A monotonic clock in nanoseconds, as skynet's high performance counter.
skynet.hpc = skc.hpc

-- Environment ----------------------------------------------------------------

skynet.getenv = R.getenv
skynet.setenv = R.setenv

-- Accepted for compatibility; tracing is not implemented.
function skynet.trace() end
function skynet.traceproto() end
function skynet.harbor() return 0 end
function skynet.memlimit() end

-- skynet.ignoreret(): a dispatch function that never answers must say so in
-- skc (every call ends): kept as a no-op for source compatibility.
function skynet.ignoreret() end

function skynet.endless() return false end

return skynet
