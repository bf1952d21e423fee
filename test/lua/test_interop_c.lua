-- test_interop_c -- Lua and C nodes in one cluster (separate processes):
--  * a Lua script calls the C simpledb (examples/c: build/bin/simpledb_c);
--  * the C gate (build/bin/gate_c) calls the seed's Lua simpledb, run by
--    `skc run` with the seed's db.lua.
-- Skips (77) when the C example binaries are not built.
local T = require "testlib"
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local simpledb_c = T.build .. "/bin/simpledb_c"
local gate_c = T.build .. "/bin/gate_c"
local launcher = T.launcher()
for _, f in ipairs { simpledb_c, gate_c, launcher } do
    if not T.exists(f) then
        T.skip(f .. " not built")
    end
end

local dir = T.tmpdir()
local cdb_url = "ipc://" .. dir .. "/cdb.ipc"
local luadb_url = "ipc://" .. dir .. "/luadb.ipc"

-- 1. Lua calls the C simpledb ---------------------------------------------------
local cdb_log = dir .. "/cdb.log"
local cdb = T.spawn({ simpledb_c, cdb_url }, cdb_log)
T.ok(T.wait_until(function()
    return (T.read(cdb_log) or ""):find("Database node ready", 1, true)
end, 10000), "C simpledb ready")

skynet.setenv("logger", dir .. "/client.log")
T.skynet_main(function()
    cluster.reload { cdb = cdb_url }
    cluster.set_timeout(5000)
    -- db.c itself did SET a showsss, GET a at start
    T.eq(cluster.call("cdb", "@sdb", "GET", "a"), "showsss",
        "GET from the C service")
    T.eq(cluster.call("cdb", "@sdb", "SET", "player_1001",
        '{name="Alice", level=10}'), nil, "SET returns the old value")
    T.eq(cluster.call("cdb", "@sdb", "GET", "player_1001"),
        '{name="Alice", level=10}')
    -- Lua types survive the C store byte for byte
    local v = { name = "Alice", level = 10, tags = { "a", "b" },
        ratio = 0.5, big = math.maxinteger }
    cluster.call("cdb", "@sdb", "SET", "t", v)
    T.same(cluster.call("cdb", "@sdb", "GET", "t"), v, "table via C")
    cluster.call("cdb", "@sdb", "SET", "f", 1.0)
    T.eq(cluster.call("cdb", "@sdb", "GET", "f"), 1.0, "float via C")
    T.eq(cluster.call("cdb", ".SIMPLEDB", "GET", "f"), 1.0, ".name")
    local p = cluster.proxy("cdb@sdb")
    T.eq(skynet.call(p, "lua", "GET", "a"), "showsss", "proxy to C")
    T.ok(math.type(cluster.query("cdb", "sdb")) == "integer", "query C")
    T.ok(cluster.send("cdb", "@sdb", "PING", "from lua"), "send to C")
    T.raises({ "cluster.call cdb @sdb", "EHANDLER" }, cluster.call, "cdb",
        "@sdb", "NOPE", "x")
end, 30)
T.ok(T.wait_until(function()
    return (T.read(cdb_log) or ""):find("ping from lua", 1, true)
end, 10000), "C service got the send")
T.kill(cdb)

-- 2. The C gate calls the seed's Lua simpledb ------------------------------------
local src = T.source .. "/examples/lua/skynet_cluster"
for _, f in ipairs { "simpledb.lua", "db.lua" } do
    T.write(dir .. "/" .. f, assert(T.read(src .. "/" .. f)))
end
T.write(dir .. "/clustermap.lua", string.format("db = %q\n", luadb_url))
T.write(dir .. "/config_db", string.format([[
thread = 4
harbor = 0
start = "db"
luaservice = "%s/?.lua"
cluster = "%s/clustermap.lua"
]], dir, dir))
local luadb_log = dir .. "/luadb.log"
local luadb = T.spawn({ launcher, "run", dir .. "/config_db" }, luadb_log)
T.ok(T.wait_until(function()
    return (T.read(luadb_log) or ""):find("Database node ready", 1, true)
end, 10000), "Lua db ready")
local gok, gout = T.run({ gate_c, luadb_url }, 30)
T.ok(gok, "gate_c succeeded")
T.has(gout, '{name="Alice", level=10}', "Cluster config updated!", "hishow")
T.kill(luadb)
if T.failures > 0 then
    io.stderr:write("--- gate_c ---\n", gout or "", "\n--- lua db ---\n",
        T.read(luadb_log) or "", "\n--- C db ---\n", T.read(cdb_log) or "")
end
T.cleanup()
T.finish()
