-- test_cluster_examples -- skynet's two cluster examples, in skc's own
-- code: svc/ex_db.lua (what examples/cluster1.lua does) and
-- svc/ex_client.lua (what examples/cluster2.lua does, plus more), with
-- the snax service snax/ex_ping.lua and the seed's simpledb, run by the
-- launcher as two processes.  Every line they print is checked; the map
-- uses ipc:// under a temp dir, so parallel runs do not collide.
local T = require "testlib"

local launcher = T.need_launcher()

local dir = T.tmpdir()
local db_addr = string.format("ipc://%s/db.ipc", dir)
local db2_addr = string.format("ipc://%s/db2.ipc", dir)
-- The client's map, as skynet's examples/clustername.lua.
T.write(dir .. "/clustername.lua", string.format([[
__nowaiting = true	-- off: cluster.call waits for an absent node

db = "%s"
db2 = "%s"
]], db_addr, db2_addr))

local config = [[
thread = 2
logger = nil
harbor = 0
start = "%s"
bootstrap = "snlua bootstrap"
luaservice = "$EX_TESTDIR/svc/?.lua;$EX_SRCDIR/examples/lua/skynet_cluster/?.lua"
lualoader = "lualib/loader.lua"
cpath = "./cservice/?.so"
snax = "$EX_TESTDIR/snax/?.lua"
db_addr = "$EX_DB"
db2_addr = "$EX_DB2"
]]
T.write(dir .. "/config.db", config:format("ex_db"))
T.write(dir .. "/config.client", config:format("ex_client")
    .. 'cluster = "$EX_DIR/clustername.lua"\n')
local envs = {
    EX_TESTDIR = T.testdir, EX_SRCDIR = T.source, EX_DIR = dir,
    EX_DB = db_addr, EX_DB2 = db2_addr,
}

local dblog, clientlog = dir .. "/db.log", dir .. "/client.log"
local db = T.spawn({ launcher, "run", dir .. "/config.db" }, dblog, envs)
T.ok(T.wait_until(function()
    return (T.read(dblog) or ""):find("ping server start:", 1, true)
end, 20000), "db node ready")
local client = T.spawn({ launcher, "run", dir .. "/config.client" },
    clientlog, envs)
T.ok(T.wait_until(function() return not T.alive(client) end, 40000),
    "the client ends by itself (skynet.abort)")
T.ok(T.wait_until(function()
    return (T.read(dblog) or ""):find("ping server exit:", 1, true)
end, 10000), "the snax service exits")
T.kill(client)
T.kill(db)

local dbout, clientout = T.read(dblog) or "", T.read(clientlog) or ""

-- Splits a log into printed lines and log lines ("[:0000000a] text").
local function split(text)
    local prints, logs = {}, {}
    for line in text:gmatch("([^\n]*)\n") do
        if line == "stack traceback:" or line:match("^\t") then
            logs[#logs] = logs[#logs] .. "\n" .. line -- a traceback
        elseif line:match("^%[:%x+%] ") then
            logs[#logs + 1] = line:gsub("^%[:%x+%] ", "")
        else
            prints[#prints + 1] = line
        end
    end
    return prints, logs
end

local function index(list, s)
    for i, v in ipairs(list) do
        if v == s then return i end
    end
end

-- db: every printed line, in order (what skynet prints, then the lines
-- the extra checks cause).
local dbprints, dblogs = split(dbout)
T.same(dbprints, {
    "nil", "nil", "foobar", "foobar2",
    "ping server start:",
    "1\thello",
    "ping server exit:\tbye",
}, "db prints")
local dblogtext = table.concat(dblogs, "\n") .. "\n"
T.ok(T.in_order(dblogtext, {
    "LAUNCH ex_db\n", "LAUNCH simpledb\n", "Register [sdb] :",
    "Unregister [sdb] :", "Register [sdb] :", "Listen on " .. db_addr,
    "Listen on " .. db2_addr, "LAUNCH snaxd ex_ping\n",
}))
-- The two PING lines (they travel on two links: either may come first).
T.ok(index(dblogs, ":00000000 ping proxy"), "PING through the proxy")
T.ok(index(dblogs, ":00000000 ping db2:longstringVVVVVV...(102414)"),
    "PING with the 102414-byte string, truncated")

-- client: every printed line.  The fork's two calls run while the main
-- coroutine waits for db3; the reload timer fires 1 s later.
local cprints = split(clientout)
local expect = {
    "foobar", "foobar2",
    "false\tcluster.call db @sdb: node 'db' is down (false in the cluster "
        .. "map) (ENODEDOWN)",
    "hello",
    "service query\tinteger",
    "again",
    "foobar2",
    "ex_ping\tex_ping",
    "false\tthrow an error\tEHANDLER",
    "done",
}
local sorted_got, sorted_exp = { table.unpack(cprints) }, { table.unpack(expect) }
table.sort(sorted_got)
table.sort(sorted_exp)
T.same(sorted_got, sorted_exp, "client prints")
T.ok(T.in_order(table.concat(cprints, "\n"), { "foobar\n", "foobar2\n" }),
    "db then db2")
T.ok(T.in_order(table.concat(cprints, "\n"), {
    "false\tcluster.call db", "hello\n", "service query", "again\n",
    "foobar2\n", "ex_ping\tex_ping\n", "false\tthrow", "done",
}), "the reload, then the snax calls in order")

-- The one error logged: the snax service's own, for response.error.
local _, clientlogs = split(clientout)
for _, line in ipairs(clientlogs) do
    T.ok(not line:find("error", 1, true), "client log: " .. line)
end
for _, line in ipairs(dblogs) do
    T.ok(not line:find("error", 1, true)
        or line:match("^error: [^\n]*ex_ping%.lua:%d+: throw an error\n"),
        "db log: " .. line)
end
if T.failures > 0 then
    io.stderr:write("--- db ---\n", dbout, "--- client ---\n", clientout)
end
T.cleanup()
T.finish()
