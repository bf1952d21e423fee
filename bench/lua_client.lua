-- lua_client.lua -- the Lua binding's call rate, for skc_bench.
--
--   lua5.4 lua_client.lua <addr> <coroutines> <size> <warm_ms> <dur_ms>
--
-- Each coroutine loops: node:call_async() to @echo on the bench server,
-- then yields until the completion arrives.  Completions run inside
-- node:poll() and only queue the coroutine; the loop below resumes it,
-- as a scheduler on the binding does (skc.runtime works the same way).
-- Prints "RESULT ops=N secs=S errors=E" like the C clients.

local skc = require "skc"

local addr = assert(arg[1], "address")
local nco = tonumber(arg[2] or "1")
local size = tonumber(arg[3] or "32")
local warm_ms = tonumber(arg[4] or "300")
local dur_ms = tonumber(arg[5] or "2000")

local node = assert(skc.node { name = "benchlua" })
assert(node:map_set("srv", addr))

-- The first call dials and says hello; retry until the server answers.
local deadline = skc.clock() + 10000
while true do
    local r, err = node:call("srv", "@echo", "hi", 2000)
    if r then break end
    if skc.clock() > deadline then
        io.stderr:write("lua_client: cannot reach the server: ", err, "\n")
        os.exit(1)
    end
end

local payload = string.rep("x", size)
local ops, errs, active, stop = 0, 0, 0, false
local ready, nready = {}, 0

local function worker()
    local co = coroutine.running()
    local function done(reply, msg)
        nready = nready + 1
        ready[nready] = co
        ready[-nready] = reply ~= nil or msg
    end
    while not stop do
        local ok, err = node:call_async("srv", "@echo", payload, 30000, done)
        if not ok then
            errs = errs + 1
            io.stderr:write("lua_client: call_async: ", err, "\n")
            break
        end
        local res = coroutine.yield()
        if res == true then
            ops = ops + 1
        else
            errs = errs + 1
            if not stop then
                io.stderr:write("lua_client: call failed: ", tostring(res),
                    "\n")
            end
        end
    end
    active = active - 1
end

for _ = 1, nco do
    active = active + 1
    local co = coroutine.create(worker)
    assert(coroutine.resume(co))
end

local function step()
    node:poll(20)
    local n = nready
    nready = 0
    for i = 1, n do
        local co, res = ready[i], ready[-i]
        ready[i], ready[-i] = nil, nil
        local ok, e = coroutine.resume(co, res)
        if not ok then error(e) end
    end
end

local t_start = skc.clock()
while skc.clock() - t_start < warm_ms do step() end
local c0, t0 = ops, skc.clock()
while skc.clock() - t0 < dur_ms do step() end
local c1, t1 = ops, skc.clock()
stop = true
local drain_until = skc.clock() + 10000
while active > 0 and skc.clock() < drain_until do step() end

io.stdout:write(string.format("RESULT ops=%d secs=%.6f errors=%d\n",
    c1 - c0, (t1 - t0) / 1000, errs))
io.stdout:flush()
node:close()
