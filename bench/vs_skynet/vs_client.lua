-- vs_client.lua -- the client of bench/vs-skynet.sh.
--
-- Written for skc with skynet's API only (skynet.start, skynet.fork,
-- skynet.sleep/wait/wakeup, cluster.reload/call/send), so that the same
-- file runs on a real skynet build and on skc's launcher.  Config keys
-- (the script sets them through the environment):
--   vs_srv      "127.0.0.1:PORT" of vs_server.lua
--   vs_case     call1 | call16 | call128 | send | blob64k | blob1m
--   vs_warm_ms, vs_dur_ms    warm-up and measured window
--   vs_srv_pid, vs_clk_tck   for CPU time from /proc/PID/stat
-- Prints one line "RESULT case=... ops=N secs=S errors=E cpu_us=U
-- mbps=M" (cpu_us: client + server CPU per operation over the window;
-- mbps: reply bytes for the blob cases) and aborts the process.

local skynet = require "skynet"
local cluster = require "skynet.cluster"
require "skynet.manager" -- skynet.abort

local case = assert(skynet.getenv "vs_case", "vs_case")
local warm_ms = math.tointeger(tonumber(skynet.getenv "vs_warm_ms" or "300"))
local dur_ms = math.tointeger(tonumber(skynet.getenv "vs_dur_ms" or "2000"))
local srv_pid = skynet.getenv "vs_srv_pid"
local clk_tck = tonumber(skynet.getenv "vs_clk_tck" or "100")

-- utime + stime of a process in seconds, or nil.
local function cpu_of(pid)
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if not f then
        return nil
    end
    local s = f:read("a")
    f:close()
    -- Fields after the command's closing parenthesis start at field 3;
    -- utime and stime are fields 14 and 15.
    local rest = s:match("%)%s+(.*)$")
    local i, ut = 3, nil
    for w in rest:gmatch("%S+") do
        if i == 14 then
            ut = tonumber(w)
        elseif i == 15 then
            return (ut + tonumber(w)) / clk_tck
        end
        i = i + 1
    end
    return nil
end

local function cpu_both()
    local a = cpu_of("self")
    local b = srv_pid and cpu_of(srv_pid)
    if a and b then
        return a + b
    end
    return nil
end

local function sleep_ms(ms)
    skynet.sleep(math.max(1, ms // 10))
end

local function result(ops, secs, errors, cpu0, cpu1, extra)
    local cpu_us = -1
    if cpu0 and cpu1 and ops > 0 then
        cpu_us = (cpu1 - cpu0) * 1e6 / ops
    end
    -- Straight to stdout: skynet.abort() can end skynet before its logger
    -- service has written what skynet.error sent it.
    io.stdout:write(string.format(
        "RESULT case=%s ops=%d secs=%.6f errors=%d cpu_us=%.2f%s\n", case,
        ops, secs, errors, cpu_us, extra or ""))
    io.stdout:flush()
end

-- n coroutines, each calling as soon as its previous call returned.
local function calls(n, cmd, arg, size)
    local ops, errors, active, stop = 0, 0, n, false
    local main = coroutine.running()
    local waiting = false
    for _ = 1, n do
        skynet.fork(function()
            while not stop do
                local ok, r = pcall(cluster.call, "srv", "@bench", cmd, arg)
                if ok and (size == nil or #r == size) then
                    ops = ops + 1
                else
                    errors = errors + 1
                    skynet.error("vs_client: call failed: " .. tostring(r))
                    break
                end
            end
            active = active - 1
            if active == 0 and waiting then
                skynet.wakeup(main)
            end
        end)
    end
    sleep_ms(warm_ms)
    local c0, t0, cpu0 = ops, skynet.hpc(), cpu_both()
    sleep_ms(dur_ms)
    local c1, t1, cpu1 = ops, skynet.hpc(), cpu_both()
    stop = true
    if active > 0 then
        waiting = true
        skynet.wait(main)
    end
    local secs = (t1 - t0) / 1e9
    local extra
    if size then
        extra = string.format(" mbps=%.1f", (c1 - c0) * size / secs / 1e6)
    end
    result(c1 - c0, secs, errors, cpu0, cpu1, extra)
end

-- One-way messages, counted by the receiver: its count and the time of
-- the last arrival, asked over and over by a second coroutine (each ask
-- is answered after the sends before it, on both skynet and skc).  The
-- sender keeps at most WINDOW messages unconfirmed.
local WINDOW = 20000
local BATCH = 100

local function sends()
    local payload = string.rep("x", 32)
    local base = cluster.call("srv", "@bench", "sendstats")
    local sent, confirmed, stop = 0, 0, false
    local sample -- { count, last } seen by the checker
    local sender_done, checker_done = false, false
    skynet.fork(function()
        while not stop do
            if sent - confirmed < WINDOW then
                for _ = 1, BATCH do
                    cluster.send("srv", "@bench", "count", payload)
                end
                sent = sent + BATCH
                skynet.yield()
            else
                skynet.sleep(1)
            end
        end
        sender_done = true
    end)
    skynet.fork(function()
        while not stop do
            local c, last = cluster.call("srv", "@bench", "sendstats")
            confirmed = c - base
            sample = { c, last }
        end
        checker_done = true
    end)
    sleep_ms(warm_ms)
    -- The window starts at a sample taken after the warm-up.
    local old = sample
    repeat
        skynet.sleep(1)
    until sample ~= nil and sample ~= old
    local s0, cpu0 = sample, cpu_both()
    sleep_ms(dur_ms)
    stop = true
    while not (sender_done and checker_done) do
        skynet.sleep(1)
    end
    local c1, last1 = cluster.call("srv", "@bench", "sendstats")
    local cpu1 = cpu_both()
    local secs = (last1 - s0[2]) / 1e9
    local lost = sent - (c1 - base)
    result(c1 - s0[1], secs, lost > 0 and lost or 0, cpu0, cpu1,
        string.format(" sent=%d", sent))
end

local cases = {
    call1 = function() calls(1, "echo", string.rep("x", 32)) end,
    call16 = function() calls(16, "echo", string.rep("x", 32)) end,
    call128 = function() calls(128, "echo", string.rep("x", 32)) end,
    send = sends,
    blob64k = function() calls(1, "blob", 65536, 65536) end,
    blob1m = function() calls(1, "blob", 1048576, 1048576) end,
}

skynet.start(function()
    local fn = assert(cases[case], "vs_client: unknown case " .. case)
    cluster.reload { srv = assert(skynet.getenv "vs_srv", "vs_srv") }
    -- The first call connects; retry until the server answers.
    local deadline = skynet.now() + 1000
    while true do
        local ok, err = pcall(cluster.call, "srv", "@bench", "echo", "hi")
        if ok then
            break
        end
        if skynet.now() > deadline then
            skynet.error("vs_client: cannot reach the server: "
                .. tostring(err))
            skynet.abort()
            return
        end
        skynet.sleep(10)
    end
    fn()
    skynet.abort()
end)
