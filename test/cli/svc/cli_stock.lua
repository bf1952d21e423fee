-- The Lua node of test_cli.py, run by `skc run CONFIG`: a stock service
-- "@stock" (ADD/GET, the example of docs/OPERATIONS.md) and "@probe",
-- which echoes its arguments, names their types, fails, sleeps and keeps
-- what it was sent.  Opens the map entry named by the config key
-- `node_name`, then writes "ready" to the config key `readyfile`.
local skynet = require "skynet"
local cluster = require "skynet.cluster"

local notes = {}

local probe = {}

function probe.echo(...)
    skynet.retpack(...)
end

function probe.types(...)
    local t = {}
    local n = select("#", ...)
    for i = 1, n do
        local v = select(i, ...)
        t[i] = math.type(v) or type(v)
    end
    skynet.retpack(table.unpack(t, 1, n))
end

function probe.count(...)
    skynet.retpack(select("#", ...))
end

function probe.fail(text)
    error(text)
end

function probe.sleep(cs)
    skynet.sleep(cs)
    skynet.retpack("slept")
end

function probe.note(...) -- a send: no reply
    notes[#notes + 1] = { ... }
end

function probe.notes()
    skynet.retpack(notes)
end

skynet.start(function()
    local st = skynet.newservice("cli_stock_db")
    cluster.register("stock", st)
    cluster.register("probe", skynet.self())
    skynet.dispatch("lua", function(_, _, cmd, ...)
        local f = probe[cmd]
        if not f then
            error("unknown command " .. tostring(cmd))
        end
        f(...)
    end)
    cluster.open(skynet.getenv("node_name"))
    local f = assert(io.open(skynet.getenv("readyfile"), "w"))
    f:write("ready\n")
    f:close()
end)

