-- skynet.cluster -- skynet's cluster API over skc.
--
-- Differences from skynet, all deliberate (docs/LUA.md):
--  * every call ends: the node's deadline (10 s by default; config key
--    cluster_timeout, or cluster.set_timeout) bounds it;
--  * errors say what happened and where: "cluster.call db @sdb: node 'db'
--    is down (ENODEDOWN)";
--  * there are no sender/agent services: the skc node does the work.

local skc = require "skc"
local R = require "skc.runtime"

local cluster = {}

local function fail(what, peer, target, err, code)
    error(R.remote_error(what, peer, target, err, code), 3)
end

local function checknode(peer, what)
    if type(peer) ~= "string" or #peer == 0 then
        error(what .. ": node name must be a non-empty string, got "
            .. tostring(peer), 3)
    end
end

-- cluster.call(node, address, ...) -> the remote service's reply values.
-- address: "@name" (cluster name), ".name", ":hex" or a numeric handle.
-- ms: the call's own deadline, or nil (see R.cluster_rawcall).  Always
-- tail-called, so error level 2 is the caller's caller.
local skc_unpack = skc.unpack

-- The values of a reply, or a clear error for one that is not MessagePack
-- (a peer answering with raw bytes): EPROTO, as the C API says.
local function unpacked(node, target, ok, ...)
    if ok then
        return ...
    end
    error(R.remote_error("cluster.call", node, target,
        "the reply is not MessagePack: " .. tostring((...)), "EPROTO"), 2)
end

local function call(what, ms, node, address, ...)
    checknode(node, what)
    local target = R.target_of(address)
    local reply, err, code = R.cluster_call(node, target, ms, ...)
    if not reply then
        error(R.remote_error("cluster.call", node, target, err, code), 2)
    end
    return unpacked(node, target, pcall(skc_unpack, reply))
end

function cluster.call(node, address, ...)
    return call("cluster.call", nil, node, address, ...)
end

-- cluster.send(node, address, ...): one-way; like skynet it never raises
-- for a delivery problem (the failure is logged and returned).
function cluster.send(node, address, ...)
    checknode(node, "cluster.send")
    local target = R.target_of(address)
    local ok, err, code = R.cluster_send(node, target, ...)
    if not ok then
        local text = R.remote_error("cluster.send", node, target, err, code)
        R.log(R.self() or 0, text)
        return false, text
    end
    return true
end

-- cluster.open("name") listens on the map address of `name` and returns
-- the name; cluster.open(port) listens on 0.0.0.0:port and returns the
-- bound host and port; cluster.open("host:port" or URL) returns the bound
-- URL.
function cluster.open(where)
    local n = R.node()
    local arg
    if math.type(where) == "integer" then
        arg = "0.0.0.0:" .. where
    elseif type(where) == "string" and #where > 0 then
        arg = where
    else
        error("cluster.open: expected a node name, a port or an address, "
            .. "got " .. tostring(where), 2)
    end
    local url, err, code = n:open(arg)
    if not url then
        error(string.format("cluster.open %s: %s (%s)", tostring(where),
            tostring(err), tostring(code)), 2)
    end
    R.log(R.self() or 0, "Listen on " .. url)
    if type(where) == "number" then
        local host, port = url:match("^%a[%w+.-]*://(.*):(%d+)$")
        return host, math.tointeger(tonumber(port))
    elseif where:find(":", 1, true) then
        return url
    end
    return where
end

-- cluster.reload(): re-reads the map file named by the config's `cluster`;
-- cluster.reload{ name = "addr" | false | group, __nowaiting = bool }:
-- merges, all or nothing.  A group is { "a", "b" } (failover) or
-- { "a", "b", policy = "roundrobin" | "random" }.
function cluster.reload(config)
    local n = R.node()
    local ok, err, code
    if config == nil then
        ok, err, code = n:map_reload()
    else
        if type(config) ~= "table" then
            error("cluster.reload: expected a table or nothing", 2)
        end
        ok, err, code = n:map_update(config, "cluster.reload")
    end
    if not ok then
        error(string.format("cluster.reload: %s (%s)", tostring(err),
            tostring(code)), 2)
    end
end

-- cluster.proxy(node, name) or cluster.proxy("node@name" / "node.name"):
-- a local address that forwards to the remote service; usable with
-- skynet.call / skynet.send.
function cluster.proxy(node, name)
    if name == nil then
        if type(node) ~= "string" then
            error("cluster.proxy: expected \"node@name\"", 2)
        end
        local n, sep = node:match("^([^@.]+)()[@.]")
        if not n then
            error("cluster.proxy: expected \"node@name\" or \"node.name\", "
                .. "got " .. node, 2)
        end
        node, name = n, node:sub(sep)
    end
    checknode(node, "cluster.proxy")
    if type(name) == "string" and name:match("^%d+$") then
        name = math.tointeger(tonumber(name)) -- a numeric handle
    end
    return R.proxy(node, R.target_of(name))
end

-- cluster.register(name [, addr]): makes addr (default: this service)
-- reachable as "@name" from other nodes.  One name per service: a new
-- name replaces the old one.
function cluster.register(name, addr)
    if type(name) ~= "string" or #name == 0 then
        error("cluster.register: name must be a non-empty string", 2)
    end
    local h = addr and R.resolve(addr) or R.self()
    if not h then
        error("cluster.register " .. name .. ": unknown service "
            .. tostring(addr), 2)
    end
    R.node()
    local ok, err, code = R.cluster_register(name, h)
    if not ok then
        error(string.format("cluster.register %s: %s (%s)", name,
            tostring(err), tostring(code)), 2)
    end
    R.log(R.self() or 0, string.format("Register [%s] %s", name,
        R.address(h)))
end

-- cluster.unregister(name): a name nobody registered is a no-op.
function cluster.unregister(name)
    R.node()
    local h = R.cluster_unregister(name)
    if h then
        R.log(R.self() or 0, string.format("Unregister [%s] %s", name,
            R.address(h)))
    end
end

-- cluster.query(node, name) -> the handle registered as "@name" there.
function cluster.query(node, name)
    checknode(node, "cluster.query")
    local n = R.node()
    if type(name) ~= "string" or #name == 0 then
        error("cluster.query: name must be a non-empty string", 2)
    end
    local target = R.target_of(name)
    local h, err, code
    if node == n:name() then
        h, err, code = n:lookup(target)
    else
        h, err, code = R.cluster_query(node, target)
    end
    if not h then
        fail("cluster.query", node, target, err, code)
    end
    return h
end

-- cluster.snax(node, name [, address]): a snax object for the snax
-- service `name` on `node`; without an address, the node's ".service" is
-- asked for its unique snax service of that name (waiting until it has
-- started).  The remote service must call snax.enablecluster(); this
-- side needs the service's source on its `snax` path, for the method ids.
function cluster.snax(node, name, address)
    checknode(node, "cluster.snax")
    if type(name) ~= "string" or #name == 0 then
        error("cluster.snax: name must be a non-empty string", 2)
    end
    local snax = require "skynet.snax"
    if not address then
        address = cluster.call(node, ".service", "QUERY", "snaxd", name)
        if not address then
            error(string.format("cluster.snax %s %s: no such snax service",
                node, name), 2)
        end
    end
    return snax.bind(cluster.proxy(node, address), name)
end

-- Extensions (not in skynet) --------------------------------------------------

local function deadline(ms, what)
    if ms == false then
        return R.NO_DEADLINE
    end
    if math.type(ms) ~= "integer" or ms < 0 or ms > R.NO_DEADLINE then
        error(what .. ": expected milliseconds (an integer >= 0; 0 = the "
            .. "node's default) or false (no deadline), got " .. tostring(ms),
            3)
    end
    return ms
end

-- cluster.set_timeout(ms | false): deadline of later cluster calls from
-- this process (0 = the node's default, false = none); returns the
-- previous value.
function cluster.set_timeout(ms)
    local old = R.set_call_timeout(deadline(ms, "cluster.set_timeout"))
    if old == R.NO_DEADLINE then
        return false
    end
    return old
end

-- cluster.call_timeout(ms | false, node, address, ...): cluster.call with
-- its own deadline (false = none, for a long poll).
function cluster.call_timeout(ms, node, address, ...)
    ms = deadline(ms, "cluster.call_timeout")
    return call("cluster.call_timeout", ms, node, address, ...)
end

-- cluster.with_timeout(ms | false, fn, ...): runs fn(...) and returns its
-- results; the cluster calls this coroutine makes meanwhile (cluster.call,
-- cluster.query, skynet.call through a proxy, a snax req) have deadline
-- `ms`.  Coroutines it forks do not inherit it.
function cluster.with_timeout(ms, fn, ...)
    ms = deadline(ms, "cluster.with_timeout")
    if type(fn) ~= "function" then
        error("cluster.with_timeout: expected a function", 2)
    end
    return R.with_timeout(ms, fn, ...)
end

-- Peer health (issue #12) ----------------------------------------------------

-- cluster.monitor(function(node, state, reason, addr) ... end) -> id.
-- Called for every change of a peer's state after this call: state "up"
-- or "down"; reason "connected", "refused", "unreachable", "reset",
-- "heartbeat timeout", "marked down", "address changed", ...  Each call
-- runs in a new coroutine of the registering service (it may call, send
-- and sleep), reports in the order they happened.  Several monitors may
-- be registered; they are called in registration order.
function cluster.monitor(fn)
    if type(fn) ~= "function" then
        error("cluster.monitor: expected a function", 2)
    end
    R.node()
    return R.monitor(fn)
end

-- cluster.on_reload(function(ok, detail) ... end): with the config key
-- cluster_watch = true the node reloads its map file whenever the file
-- changes on disk (merge, as cluster.reload()); fn is told of each reload
-- in a new coroutine of the registering service: ok true (detail: the
-- file) or false (detail: the error with file:line; nothing was applied).
function cluster.on_reload(fn)
    if type(fn) ~= "function" then
        error("cluster.on_reload: expected a function", 2)
    end
    R.node()
    R.on_reload(fn)
end

-- cluster.unmonitor(id): removes a monitor; true if it was registered.
function cluster.unmonitor(id)
    return R.unmonitor(id)
end

-- cluster.state(node) -> "up" | "down" | "connecting" | "unknown", detail.
-- For a group: "up" if a member is up, "down" if all are down.  The detail
-- says the address and why ("tcp://127.0.0.1:7102 down (reset)").
function cluster.state(node)
    checknode(node, "cluster.state")
    local state, detail, code = R.node():peer_state(node)
    if not state then
        error(string.format("cluster.state %s: %s (%s)", node,
            tostring(detail), tostring(code)), 2)
    end
    return state, detail
end

-- cluster.ping(node [, ms]) -> round-trip time in milliseconds (a float,
-- microsecond resolution).  For a group, the member a call would go to.
-- Suspends the calling coroutine like cluster.call; raises like it.
-- ms: the ping's deadline (default: as for cluster.call).
function cluster.ping(node, ms)
    checknode(node, "cluster.ping")
    if ms ~= nil then
        ms = deadline(ms, "cluster.ping")
    end
    local rtt, err, code = R.cluster_ping(node, ms)
    if not rtt then
        error(string.format("cluster.ping %s: %s (%s)", node, tostring(err),
            tostring(code)), 2)
    end
    return rtt / 1000
end

-- cluster.stats([node [, ms]]) -> the statistics of this node, or of
-- node (asked over the network), as a JSON string (docs/OPERATIONS.md,
-- "Statistics").  Asking another node blocks this node for at most ms
-- (default: as for cluster.call); raises like cluster.call.
function cluster.stats(node, ms)
    if node ~= nil then
        checknode(node, "cluster.stats")
    end
    if ms ~= nil then
        ms = deadline(ms, "cluster.stats")
    end
    local json, err, code = R.node():stats(node, ms)
    if not json then
        error(string.format("cluster.stats %s: %s (%s)", tostring(node),
            tostring(err), tostring(code)), 2)
    end
    return json
end

function cluster.get_sender()
    error("cluster.get_sender: skc has no sender services", 2)
end

return cluster
