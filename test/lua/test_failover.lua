-- test_failover -- node health and groups from the skynet layer (issue
-- #12), three processes: two group members started with the launcher
-- (`skc run CONFIG`, svc/fo_server.lua) and this script as the client.
--
--  * the map (a file) has db_a, db_b and the group db = { "db_a", "db_b" };
--  * cluster.monitor (two of them), cluster.state, cluster.ping;
--  * a coroutine calls "db" every 50 ms; db_a is killed with kill -9: the
--    calls go to db_b within 1.5 s, with at most a few errors (calls in
--    flight), and the monitors report db_a down; db_a is restarted: the
--    calls return to it and the monitors report it up;
--  * cluster.reload with a roundrobin group, and with malformed groups
--    (an error; nothing of that reload applied).
local T = require "testlib"
local skc = require "skc"
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local launcher = T.need_launcher()

local dir = T.tmpdir()
local mapfile = dir .. "/map.lua"
local function ipc(name)
    return string.format("ipc://%s/%s.ipc", dir, name)
end
T.write(mapfile, string.format([[
db_a = "%s"
db_b = "%s"
db = { "db_a", "db_b" }   -- failover: db_a while it is up
]], ipc("db_a"), ipc("db_b")))

local function config(name)
    local path = dir .. "/config_" .. name
    T.write(path, string.format([[
start = "fo_server"
luaservice = "%s/svc/?.lua"
cluster = "%s"
node_name = "%s"
readyfile = "%s/%s.ready"
cluster_heartbeat_ms = 250
cluster_heartbeat_misses = 4
]], T.testdir, mapfile, name, dir, name))
    return path
end

local servers = {}
local starts = {}
local function start(name)
    os.remove(dir .. "/" .. name .. ".ready")
    starts[name] = (starts[name] or 0) + 1
    servers[name] = T.spawn({ launcher, "run", config(name) },
        string.format("%s/%s.log%d", dir, name, starts[name]))
end

skynet.setenv("cluster", mapfile)
skynet.setenv("logger", dir .. "/client.log")
skynet.setenv("cluster_heartbeat_ms", "200")
skynet.setenv("cluster_heartbeat_misses", "3")

-- Waits in the scheduler until pred() is true, at most ms.
local function wait_for(pred, ms)
    local limit = skc.clock() + ms
    while not pred() do
        if skc.clock() >= limit then
            return false
        end
        skynet.sleep(2)
    end
    return true
end

local function ready(name)
    return T.exists(dir .. "/" .. name .. ".ready")
end

local function body()
    cluster.set_timeout(2000)
    start("db_a")
    start("db_b")
    T.ok(wait_for(function() return ready("db_a") and ready("db_b") end,
        20000), "both members ready")

    -- two monitors, both told every change in order
    local events, seen2 = {}, 0
    local id1 = cluster.monitor(function(node, state, reason, addr)
        events[#events + 1] = { node = node, state = state, reason = reason,
            addr = addr, t = skc.clock() }
    end)
    local id2 = cluster.monitor(function() seen2 = seen2 + 1 end)
    T.ok(math.type(id1) == "integer" and id1 ~= id2, "monitor ids")
    T.raises("cluster.monitor: expected a function", cluster.monitor, 1)

    -- group members are connected eagerly
    T.ok(wait_for(function()
        return cluster.state("db_a") == "up" and cluster.state("db_b") == "up"
    end, 10000), "members up without a call")
    local st, detail = cluster.state("db")
    T.eq(st, "up", "group state")
    T.has(detail, "group (failover)", "db_a", "db_b")
    st, detail = cluster.state("db_a")
    T.has(detail, ipc("db_a"))
    T.eq(cluster.state("ghost"), "unknown", "a name not in the map")
    T.raises("cluster.state: node name", cluster.state, "")

    local rtt = cluster.ping("db_a")
    T.ok(math.type(rtt) == "float" and rtt > 0 and rtt < 2000,
        "ping rtt in ms: " .. tostring(rtt))
    T.ok(cluster.ping("db", 1000) > 0, "ping a group")
    T.raises({ "cluster.ping ghost", "ENONODE" }, cluster.ping, "ghost", 200)
    T.raises("cluster.ping: expected milliseconds", cluster.ping, "db_a", -1)
    -- statistics: this node's and a member's (JSON strings)
    local mine = cluster.stats()
    T.has(mine, '"counters":{', '"db_a":{"address":"' .. ipc("db_a"),
        '"state":"up"')
    T.has(cluster.stats("db_a", 2000), '"node":"db_a"', '"calls_in":')
    T.raises({ "cluster.stats ghost", "ENONODE" }, cluster.stats, "ghost", 200)
    T.same({ cluster.call("db_b", "@who", "config") }, { "250", "4" },
        "heartbeat keys reach the launcher's config")

    -- the caller: "db" every 50 ms
    local results, running = {}, true
    skynet.fork(function()
        while running do
            local t = skc.clock()
            local ok, who = pcall(cluster.call_timeout, 1000, "db", "@who")
            results[#results + 1] = { t = t, ok = ok, who = who }
            skynet.sleep(5)
        end
        running = nil
    end)
    T.ok(wait_for(function() return #results >= 8 end, 10000),
        "calls under way")
    for i, r in ipairs(results) do
        T.ok(r.ok and r.who == "db_a", "call " .. i .. " answered by db_a: "
            .. tostring(r.who))
    end

    -- kill -9 the first member
    local before = #events
    local t_kill = skc.clock()
    T.kill(servers.db_a, "KILL")
    local switched
    T.ok(wait_for(function()
        for i = #results, 1, -1 do
            local r = results[i]
            if r.t < t_kill then break end
            if r.ok and r.who == "db_b" then
                switched = switched or r
                if r.t < switched.t then switched = r end
            end
        end
        return switched ~= nil
    end, 10000), "calls reach db_b after the kill")
    if switched then
        T.ok(switched.t - t_kill <= 1500, string.format(
            "switched to db_b %d ms after the kill (<= 1500)",
            switched.t - t_kill))
    end
    local errors = 0
    print("around the kill (ms after it; calls by start time, reports):")
    for _, r in ipairs(results) do
        if r.t >= t_kill - 200 and r.t <= t_kill + 2500 then
            print("", r.t - t_kill, r.ok, r.who)
        end
    end
    for _, e in ipairs(events) do
        print("", e.t - t_kill, "monitor", e.node, e.state, e.reason)
    end
    for _, r in ipairs(results) do
        if r.t >= t_kill - 1000 and not r.ok then
            errors = errors + 1
            T.ok(tostring(r.who):find("ECONNLOST", 1, true)
                or tostring(r.who):find("EUNREACHABLE", 1, true)
                or tostring(r.who):find("ENODEDOWN", 1, true),
                "in-flight failure is a clear one: " .. tostring(r.who))
        end
    end
    T.ok(errors <= 3, "at most a few errors around the kill: " .. errors)
    T.ok(wait_for(function()
        for i = before + 1, #events do
            local e = events[i]
            if e.node == "db_a" and e.state == "down" then return true end
        end
        return false
    end, 5000), "monitor: db_a down")
    T.eq((cluster.state("db_a")), "down", "state after the kill")
    T.eq((cluster.state("db")), "up", "the group is up while db_b is")
    T.ok(cluster.ping("db") > 0, "ping the group: answered by db_b")

    -- restart it: the calls return to db_a
    local down_at = #events
    local t_restart = skc.clock()
    start("db_a")
    T.ok(wait_for(function() return ready("db_a") end, 20000),
        "db_a restarted")
    local back
    T.ok(wait_for(function()
        for i = #results, 1, -1 do
            local r = results[i]
            if r.t < t_restart then break end
            if r.ok and r.who == "db_a" then back = r return true end
        end
        return false
    end, 20000), "calls return to db_a after its restart")
    local up_event
    for i = down_at + 1, #events do
        local e = events[i]
        if e.node == "db_a" and e.state == "up" then up_event = e end
    end
    T.ok(up_event, "monitor: db_a up again")
    if up_event then
        T.eq(up_event.reason, "connected")
        T.eq(up_event.addr, ipc("db_a"))
    end
    T.eq(seen2, #events, "the second monitor saw every report")
    T.ok(cluster.unmonitor(id2), "unmonitor")
    T.ok(not cluster.unmonitor(id2), "unmonitor twice")

    running = false
    T.ok(wait_for(function() return running == nil end, 5000),
        "caller stopped")
    -- after the switch back, every later call was db_a's
    for _, r in ipairs(results) do
        if back and r.t > back.t then
            T.ok(r.ok and r.who == "db_a", "stays on db_a: " .. tostring(r.who))
        end
    end

    -- groups in cluster.reload: all or nothing
    local node = require("skc.runtime").node()
    cluster.reload{
        rr = { "db_a", "db_b", policy = "roundrobin" },
        extra = ipc("extra"),
    }
    T.eq(node:map_get("rr"), '{"db_a","db_b",policy="roundrobin"}',
        "a group from cluster.reload")
    T.eq(node:map_get("extra"), ipc("extra"), "and the plain entry with it")
    T.ok(wait_for(function() return cluster.state("rr") == "up" end, 5000))
    local who = {}
    for _ = 1, 4 do
        who[cluster.call("rr", "@who")] = true
    end
    T.ok(who.db_a and who.db_b, "roundrobin reaches both members")

    local err = T.raises({ "cluster.reload", "unknown policy", "ESYNTAX" },
        cluster.reload, { extra2 = ipc("extra2"),
            bad = { "db_a", policy = "nearest" } })
    T.has(err, "group 'bad'")
    T.eq(node:map_get("extra2"), nil, "nothing applied")
    T.raises({ "cluster.reload", "itself a group" }, cluster.reload,
        { bad = { "db", "db_b" } })
    T.raises({ "cluster.reload", "at least one member" }, cluster.reload,
        { bad = {} })
    T.raises("expected member name strings", cluster.reload,
        { bad = { "db_a", 7 } })
    T.eq(node:map_get("bad"), nil, "no malformed group in the map")
    T.eq(node:map_get("db"), '{"db_a","db_b"}', "the file's group is intact")

    T.kill(servers.db_a)
    T.kill(servers.db_b)
end

T.skynet_main(body, 120)
if T.failures > 0 then
    for _, f in ipairs({ "client.log", "db_a.log1", "db_a.log2",
            "db_b.log1" }) do
        io.stderr:write("--- ", f, " ---\n", T.read(dir .. "/" .. f) or "",
            "\n")
    end
end
T.cleanup()
T.finish()
