-- test_launcher -- `skc run CONFIG`: skynet config semantics ($VAR,
-- include, ignored keys, logger, lua_path), exit codes and messages.
local T = require "testlib"

local skc_bin = T.need_launcher()

local dir = T.tmpdir()
T.write(dir .. "/probe_mod.lua", "return { answer = 42 }\n")
T.write(dir .. "/extra.conf", 'included = "yes"\n')
local function config(extra)
    return string.format([[
-- a skynet config
thread = 8
harbor = 0
daemon = nil
bootstrap = "snlua bootstrap"
lualoader = "./lualib/loader.lua"
cpath = "./cservice/?.so"
start = "launch_probe"
luaservice = "%s/svc/?.lua"
lua_path = "$PROBE_DIR/?.lua"
custom = "$PROBE_VALUE-x"
include "extra.conf"
%s
]], T.testdir, extra or "")
end

-- version / usage
local ok, out = T.run({ skc_bin, "version" })
T.ok(ok, "skc version") T.has(out, "skc 0.")
ok, out = T.run({ skc_bin })
T.eq(ok, nil, "no arguments: usage error") T.has(out, "usage")
ok, out = T.run({ skc_bin, "--help" })
T.ok(ok) T.has(out, "skc run CONFIG")

-- a good config, run both ways
T.write(dir .. "/good", config())
local envs = { PROBE_DIR = dir, PROBE_VALUE = "from-env" }
for _, argv in ipairs { { skc_bin, "run", dir .. "/good" },
    { skc_bin, dir .. "/good" } } do
    ok, out = T.run(argv, 20, envs)
    T.ok(ok, "ran: " .. out)
    T.has(out, "thread=8\n", "custom=from-env-x\n", "included=yes\n",
        "harbor=0\n", "daemon=nil\n", "logger=nil\n", "module=42\n",
        "] logged line\n", "LAUNCH launch_probe")
end

-- logger = file; the last service exiting ends the process
T.write(dir .. "/logged", config(string.format(
    'logger = "%s/skc.log"\nprobe_mode = "exit"', dir)))
ok, out = T.run({ skc_bin, "run", dir .. "/logged" }, 20, envs)
T.ok(ok, "exit ends the process: " .. out)
T.has(out, "module=42")
T.ok(not out:find("logged line", 1, true), "log lines not on stdout")
T.has(T.read(dir .. "/skc.log") or "", "] logged line\n")

-- cluster_watch = true: the map file reloads itself; cluster.on_reload is
-- told of a good edit and of a bad one (file:line)
T.write(dir .. "/wmap.lua", 'other = "127.0.0.1:8"\n')
T.write(dir .. "/watch", config(string.format(
    'cluster = "%s/wmap.lua"\ncluster_watch = true', dir))
    :gsub("launch_probe", "watch_probe"))
ok, out = T.run({ skc_bin, "run", dir .. "/watch" }, 20, envs)
T.has(out, "WATCHING", "RELOAD 1 true " .. dir .. "/wmap.lua",
    "RELOAD 2 false " .. dir .. "/wmap.lua:2: expected an address")
T.ok(not out:find("TIMEOUT", 1, true), "reloads within 10 s: " .. out)

-- failures: exit code 1 and a message saying why
ok, out = T.run({ skc_bin, "run", dir .. "/good" }, 20, { PROBE_DIR = dir })
T.eq(ok, nil, "unset $VAR fails") T.has(out, "PROBE_VALUE", "not set")
ok, out = T.run({ skc_bin, "run", dir .. "/missing" })
T.eq(ok, nil, "missing config") T.has(out, "missing")
T.write(dir .. "/syntax", "thread = = 4\n")
ok, out = T.run({ skc_bin, "run", dir .. "/syntax" })
T.eq(ok, nil, "syntax error") T.has(out, "syntax")
T.write(dir .. "/nostart", config():gsub("launch_probe", "no_such_service"))
ok, out = T.run({ skc_bin, "run", dir .. "/nostart" }, 20, envs)
T.eq(ok, nil, "unknown start service") T.has(out, "no_such_service", "not found")
T.write(dir .. "/badstart", config():gsub("launch_probe", "bad_start"))
ok, out = T.run({ skc_bin, "run", dir .. "/badstart" }, 20, envs)
T.eq(ok, nil, "failing start service") T.has(out, "start failed on purpose")
T.write(dir .. "/badmap", config('cluster = "' .. dir .. '/nomap.lua"'))
ok, out = T.run({ skc_bin, "run", dir .. "/badmap" }, 20, envs)
T.eq(ok, nil, "unreadable cluster map") T.has(out, "nomap.lua")
T.write(dir .. "/table", config("tbl = {}"))
ok, out = T.run({ skc_bin, "run", dir .. "/table" }, 20, envs)
T.eq(ok, nil, "table values refused") T.has(out, "tbl")

T.cleanup()
T.finish()
