-- report.lua RESULTS RUNS -- the table of bench/vs-skynet.sh.
--
-- RESULTS has one line per sample: "run case impl value cpu_us" (impl
-- skynet, skc or raw; value in the case's unit; cpu_us < 0 = unknown).
-- Prints, per case, the medians over the runs and the median of the
-- per-run ratios skc/skynet (and raw NNG/skynet) with their range.

local path, runs = arg[1], tonumber(arg[2])

local CASES = {
    { "call1", "call 32 B, 1 in flight", "calls/s" },
    { "call16", "call 32 B, 16 coroutines", "calls/s" },
    { "call128", "call 32 B, 128 coroutines", "calls/s" },
    { "send", "send 32 B, counted at receiver", "msgs/s" },
    { "blob64k", "64 KiB reply, 1 in flight", "MB/s" },
    { "blob1m", "1 MiB reply, 1 in flight", "MB/s" },
}

local val, cpu = {}, {} -- [case][impl][run]
for line in io.lines(path) do
    local r, c, impl, v, u = line:match("^(%d+) (%S+) (%S+) (%S+) (%S+)$")
    if r then
        r = tonumber(r)
        for _, t in ipairs({ val, cpu }) do
            t[c] = t[c] or {}
            t[c][impl] = t[c][impl] or {}
        end
        val[c][impl][r] = tonumber(v)
        local cu = tonumber(u)
        cpu[c][impl][r] = cu and cu >= 0 and cu or nil
    end
end

local function median(list)
    table.sort(list)
    local n = #list
    if n == 0 then
        return nil
    end
    if n % 2 == 1 then
        return list[(n + 1) // 2]
    end
    return (list[n // 2] + list[n // 2 + 1]) / 2
end

local function values(t)
    local l = {}
    for r = 1, runs do
        if t and t[r] then
            l[#l + 1] = t[r]
        end
    end
    return l
end

-- Median of the per-run ratios a/b and "lo-hi".
local function ratio(a, b)
    local q = {}
    for r = 1, runs do
        if a and b and a[r] and b[r] and b[r] > 0 then
            q[#q + 1] = a[r] / b[r]
        end
    end
    if #q == 0 then
        return "n/a", ""
    end
    local lo, hi = math.huge, -math.huge
    for _, x in ipairs(q) do
        lo, hi = math.min(lo, x), math.max(hi, x)
    end
    local m = median(q)
    local spread = #q > 1 and string.format("%.2f-%.2f", lo, hi) or ""
    return string.format("%.2f", m), spread
end

local function fmt(v, unit)
    if v == nil then
        return "n/a"
    end
    if unit == "MB/s" or unit == "us" then
        return string.format("%.1f", v)
    end
    local s = string.format("%.0f", v)
    return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function row(name, unit, t)
    local sky, skc = t and t.skynet, t and t.skc
    local q, sp = ratio(skc, sky)
    local raw, rq = "", ""
    if t and t.raw then
        local rsp
        rq, rsp = ratio(t.raw, sky)
        rq = rq .. (rsp ~= "" and " (" .. rsp .. ")" or "")
        raw = fmt(median(values(t.raw)), unit)
    end
    print(string.format("| %s | %s | %s | %s | %s%s | %s | %s |", name, unit,
        fmt(median(values(sky)), unit), fmt(median(values(skc)), unit), q,
        sp ~= "" and " (" .. sp .. ")" or "", raw, rq))
end

print("| case | unit | skynet | skc | skc/skynet (runs) | raw NNG "
    .. "| raw NNG/skynet (runs) |")
print("|---|---|---:|---:|---:|---:|---:|")
for _, c in ipairs(CASES) do
    row(c[2], c[3], val[c[1]])
end
for _, c in ipairs(CASES) do
    row("CPU per op, " .. c[2] .. ", client + server", "us", cpu[c[1]])
end
print("(CPU rows: lower is better; raw NNG: skc_bench raw_client/raw_server, "
    .. "32 B echo)")
