-- pyclient.lua -- a skynet-style start service for the Python tests
-- (test_lua_interop.py, test_cluster.py): a Lua node that serves the seed's
-- simpledb as "@sdb" and calls a Python node's services.  Every step logs
-- one line the test waits for.  Config keys (skynet.getenv):
--   self_node  the map name to open (default "lua")
--   py_node    the Python node's map name (default "py")
--   c_node     if set, also call the C simpledb on that node
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local function show(v)
    if type(v) ~= "table" then
        return tostring(v)
    end
    local keys = {}
    for k in pairs(v) do
        keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do
        parts[#parts + 1] = tostring(k) .. "=" .. show(v[k])
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

skynet.start(function()
    local me = skynet.getenv("self_node") or "lua"
    local py = skynet.getenv("py_node") or "py"
    local cnode = skynet.getenv("c_node")

    local sdb = skynet.newservice("simpledb")
    cluster.register("sdb", sdb)
    cluster.open(me)
    skynet.error("PYCLIENT READY")

    local a, b, c = cluster.call(py, "@echo", "hello", 42, { x = 1 })
    skynet.error("ECHO", a, b, show(c))

    local ok, err = pcall(cluster.call, py, "@fail", "boom")
    skynet.error("FAIL", ok, err)

    skynet.error("SET", cluster.call(py, "@sdb", "SET", "from_lua", "lua!"))
    skynet.error("GET", cluster.call(py, "@sdb", "GET", "from_lua"))

    cluster.send(py, "@sdb", "PING", "ping from lua")

    if cnode then
        cluster.call(cnode, "@sdb", "SET", "from_lua", "lua via c")
        skynet.error("CGET", cluster.call(cnode, "@sdb", "GET", "from_lua"))
    end
    skynet.error("PYCLIENT DONE")
end)
