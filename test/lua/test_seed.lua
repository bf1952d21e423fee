-- test_seed -- the seed example (examples/lua/skynet_cluster: clustermap,
-- simpledb, db, gates, unchanged) as two processes run by the launcher.
-- Only the map addresses change (ipc:// under a temp dir instead of the
-- fixed ports 7101/7102, so that parallel test runs do not collide).
local T = require "testlib"

local launcher = T.need_launcher()

local src = T.source .. "/examples/lua/skynet_cluster"
local dir = T.tmpdir()
for _, f in ipairs { "simpledb.lua", "db.lua", "gates.lua" } do
    local text = T.read(src .. "/" .. f)
    T.ok(text, "read " .. f)
    T.write(dir .. "/" .. f, text)
end
local map = T.read(src .. "/clustermap.lua")
T.ok(map and map:find('"127.0.0.1:7101"', 1, true), "seed map")
map = map:gsub('"127%.0%.0%.1:7101"', string.format('"ipc://%s/gate.ipc"', dir))
map = map:gsub('"127%.0%.0%.1:7102"', string.format('"ipc://%s/db.ipc"', dir))
T.write(dir .. "/clustermap.lua", map)

-- The seed's configs, with paths pointing at the temp dir.
local config = [[
thread = 4
logger = nil
harbor = 0
start = "%s"
bootstrap = "snlua bootstrap"	-- The service for bootstrap
lualoader = "./lualib/loader.lua"

luaservice = "$SEED_DIR/?.lua;"
lua_path = "./lualib/?.lua;"
lua_cpath = "./luaclib/?.so;"
cpath = "./cservice/?.so"

cluster = "$SEED_DIR/clustermap.lua"
]]
T.write(dir .. "/config_db", config:format("db"))
T.write(dir .. "/config_gate", config:format("gates"))
local envs = { SEED_DIR = dir }

local dblog, gatelog = dir .. "/db.log", dir .. "/gate.log"
local db = T.spawn({ launcher, "run", dir .. "/config_db" }, dblog, envs)
T.ok(T.wait_until(function()
    return (T.read(dblog) or ""):find("Database node ready", 1, true)
end, 10000), "db node ready")
local gate = T.spawn({ launcher, "run", dir .. "/config_gate" }, gatelog, envs)
T.ok(T.wait_until(function()
    return (T.read(gatelog) or ""):find("hishow", 1, true)
end, 10000), "gate node done")
T.kill(gate)
T.kill(db)

local dbout, gateout = T.read(dblog) or "", T.read(gatelog) or ""
T.ok(T.in_order(dbout, {
    "LAUNCH db", "LAUNCH simpledb", "Register [sdb]",
    "\nnil\n", "showsss\n", "Listen on", "] Database node ready",
}))
T.ok(T.in_order(gateout, {
    "LAUNCH gates", "Listen on", "] proxy ",
    '] {name="Alice", level=10}\n', '] {name="Alice", level=10}\n',
    "LAUNCH simpledb", "Register [sdb1]", "] Cluster config updated!",
    "] hishow\n",
}))
T.ok(gateout:find("%] proxy %d+\n"), "proxy prints an address")
T.ok(not gateout:find("error", 1, true), "no error in the gate log")
T.ok(not dbout:find("error", 1, true), "no error in the db log")
if T.failures > 0 then
    io.stderr:write("--- db ---\n", dbout, "--- gate ---\n", gateout)
end
T.cleanup()
T.finish()
