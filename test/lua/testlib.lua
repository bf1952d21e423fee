-- testlib -- tiny helpers shared by the Lua tests: checks, temp dirs,
-- child processes (always killed by PID, every wait bounded).

local T = {}

T.failures = 0
T.checks = 0

local function where(level)
    local info = debug.getinfo(level + 1, "Sl")
    return info and (info.short_src .. ":" .. info.currentline) or "?"
end

function T.ok(cond, msg)
    T.checks = T.checks + 1
    if not cond then
        T.failures = T.failures + 1
        io.stderr:write("FAIL ", where(2), ": ", tostring(msg or "check"),
            "\n")
        io.stderr:flush()
    end
    return cond
end

local function show(v)
    if type(v) == "string" then
        return string.format("%q", v)
    end
    return tostring(v) .. " (" .. (math.type(v) or type(v)) .. ")"
end

function T.eq(a, b, msg)
    T.checks = T.checks + 1
    local same = a == b and math.type(a) == math.type(b)
    if not same then
        T.failures = T.failures + 1
        io.stderr:write("FAIL ", where(2), ": ", tostring(msg or "eq"),
            ": got ", show(a), ", expected ", show(b), "\n")
        io.stderr:flush()
    end
    return same
end

-- Checks that s contains each of the plain substrings.
function T.has(s, ...)
    T.checks = T.checks + 1
    for i = 1, select("#", ...) do
        local sub = select(i, ...)
        if type(s) ~= "string" or not s:find(sub, 1, true) then
            T.failures = T.failures + 1
            io.stderr:write("FAIL ", where(2), ": ", show(s),
                " does not contain ", show(sub), "\n")
            io.stderr:flush()
            return false
        end
    end
    return true
end

-- Checks that f(...) raises an error containing each substring in subs.
function T.raises(subs, f, ...)
    T.checks = T.checks + 1
    local ok, err = pcall(f, ...)
    if ok then
        T.failures = T.failures + 1
        io.stderr:write("FAIL ", where(2), ": no error raised\n")
        return nil
    end
    if type(subs) == "string" then
        subs = { subs }
    end
    for _, sub in ipairs(subs) do
        if not tostring(err):find(sub, 1, true) then
            T.failures = T.failures + 1
            io.stderr:write("FAIL ", where(2), ": error ", show(tostring(err)),
                " does not contain ", show(sub), "\n")
            return err
        end
    end
    return err
end

function T.deep_eq(a, b, path)
    path = path or "value"
    if type(a) ~= type(b) then
        return false, path .. ": " .. type(a) .. " vs " .. type(b)
    end
    if type(a) ~= "table" then
        if a ~= b and not (a ~= a and b ~= b) then
            return false, path .. ": " .. show(a) .. " vs " .. show(b)
        end
        if math.type(a) ~= math.type(b) then
            return false, path .. ": " .. show(a) .. " vs " .. show(b)
        end
        return true
    end
    for k, v in pairs(a) do
        local ok, why = T.deep_eq(v, b[k], path .. "." .. tostring(k))
        if not ok then return false, why end
    end
    for k in pairs(b) do
        if a[k] == nil then
            return false, path .. "." .. tostring(k) .. " missing"
        end
    end
    return true
end

function T.same(a, b, msg)
    T.checks = T.checks + 1
    local ok, why = T.deep_eq(a, b)
    if not ok then
        T.failures = T.failures + 1
        io.stderr:write("FAIL ", where(2), ": ", tostring(msg or "same"),
            ": ", why, "\n")
    end
    return ok
end

-- Prints the summary line ctest and CI read, and exits.
function T.finish()
    local passed = T.checks - T.failures
    print(string.format("%d passed, %d failed", passed, T.failures))
    io.stdout:flush()
    os.exit(T.failures == 0 and 0 or 1, true)
end

function T.skip(why)
    print("SKIP: " .. why)
    os.exit(77, true)
end

-- Environment -------------------------------------------------------------

T.build = os.getenv("SKC_BUILD_DIR") or "build"
T.source = os.getenv("SKC_SOURCE_DIR") or "."
T.testdir = T.source .. "/test/lua"

function T.exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
end

function T.read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

function T.write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end

local function sh_quote(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
T.quote = sh_quote

function T.tmpdir()
    local p = assert(io.popen("mktemp -d \"${TMPDIR:-/tmp}/skc-lua.XXXXXX\""))
    local d = p:read("l")
    p:close()
    assert(d and #d > 0, "mktemp failed")
    T.tmpdirs = T.tmpdirs or {}
    T.tmpdirs[#T.tmpdirs + 1] = d
    return d
end

-- Processes -------------------------------------------------------------------

T.children = {}

-- Starts `argv` (a list) in the background with stdout+stderr to logfile,
-- and extra environment `envs` (a table).  Returns the PID.
function T.spawn(argv, logfile, envs)
    local parts = {}
    for k, v in pairs(envs or {}) do
        parts[#parts + 1] = k .. "=" .. sh_quote(v)
    end
    for _, a in ipairs(argv) do
        parts[#parts + 1] = sh_quote(a)
    end
    local cmd = "exec env " .. table.concat(parts, " ") .. " >"
        .. sh_quote(logfile)
        .. " 2>&1 </dev/null"
    local p = assert(io.popen("(" .. cmd .. ") & echo $!"))
    local pid = tonumber(p:read("l"))
    p:close()
    assert(pid, "spawn failed: " .. cmd)
    T.children[pid] = true
    return pid
end

-- A zombie counts as dead: the children are reparented (T.spawn's shell
-- exits at once), and whoever reaps them may take its time.
function T.alive(pid)
    local f = io.open("/proc/" .. pid .. "/stat", "r")
    if f then
        local stat = f:read("a") or ""
        f:close()
        return stat:match("^%d+ %b() (%a)") ~= "Z"
    end
    return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

-- Kills pid (TERM, then KILL after ~2 s) and reaps it.
function T.kill(pid, sig)
    if not pid then return end
    os.execute("kill -" .. (sig or "TERM") .. " " .. pid .. " 2>/dev/null")
    for _ = 1, 40 do
        if not T.alive(pid) then break end
        T.msleep(50)
    end
    if T.alive(pid) then
        os.execute("kill -KILL " .. pid .. " 2>/dev/null")
    end
    T.children[pid] = nil
end

function T.killall()
    for pid in pairs(T.children) do
        T.kill(pid)
    end
end

function T.msleep(ms)
    os.execute(string.format("sleep %.3f", ms / 1000))
end

-- Waits (outside the scheduler) until pred() is true, at most `ms`.
function T.wait_until(pred, ms, step)
    step = step or 50
    local tries = math.max(1, ms // step)
    for _ = 1, tries do
        if pred() then return true end
        T.msleep(step)
    end
    return pred() and true or false
end

-- Runs a command to completion with a time limit; returns ok, output.
function T.run(argv, limit_s, envs)
    local parts = { "env" }
    for k, v in pairs(envs or {}) do
        parts[#parts + 1] = k .. "=" .. sh_quote(v)
    end
    parts[#parts + 1] = "timeout"
    parts[#parts + 1] = tostring(limit_s or 20)
    for _, a in ipairs(argv) do parts[#parts + 1] = sh_quote(a) end
    local cmd = table.concat(parts, " ") .. " 2>&1 </dev/null"
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    local ok, _, code = p:close()
    return ok, out, code
end

function T.launcher()
    return T.build .. "/bin/skc"
end

-- The launcher's path; skips the test when it was not built.
function T.need_launcher()
    local launcher = T.launcher()
    if not T.exists(launcher) then
        T.skip("launcher " .. launcher .. " not built")
    end
    return launcher
end

-- Lines of `text` in order: checks each pattern (plain) appears after the
-- previous one.  Returns true or false, why.
function T.in_order(text, list)
    local pos = 1
    for _, s in ipairs(list) do
        local a, b = text:find(s, pos, true)
        if not a then
            return false, "missing (in order): " .. s
        end
        pos = b + 1
    end
    return true
end

-- Runs body() as the main skynet service of this script (skynet.start at
-- top level), with a watchdog: after `limit` seconds the test fails and
-- the scheduler stops.  Returns after every service has stopped.
function T.skynet_main(body, limit)
    local skynet = require "skynet"
    local failure
    local ok, err = pcall(skynet.start, function()
        skynet.timeout(math.floor((limit or 60) * 100), function()
            failure = "watchdog: the test body did not finish in "
                .. (limit or 60) .. " s"
            skynet.abort()
        end)
        local bok, berr = xpcall(body, debug.traceback)
        if not bok then failure = berr end
        skynet.abort()
    end)
    T.checks = T.checks + 2
    if not ok then
        T.failures = T.failures + 1
        io.stderr:write("FAIL skynet.start: ", tostring(err), "\n")
    end
    if failure then
        T.failures = T.failures + 1
        io.stderr:write("FAIL test body: ", tostring(failure), "\n")
    end
end

function T.cleanup()
    T.killall()
    for _, d in ipairs(T.tmpdirs or {}) do
        if d:match("skc%-lua%.") then
            os.execute("rm -rf " .. sh_quote(d))
        end
    end
end

return T
