-- skc.launcher -- what `skc run CONFIG` runs: reads a skynet-style config
-- file and starts its `start` service on the skc runtime.
--
-- Config files are Lua chunks of assignments, as in skynet:
--   * `$NAME` anywhere in the text is replaced by the environment variable
--     NAME before the chunk runs (an unset variable is an error);
--   * include "file" runs another config file (relative to the including
--     file's directory) into the same table;
--   * every global the chunk assigns becomes a key; numbers and booleans
--     are kept as strings, as skynet.getenv returns them.
-- Keys skc uses: start, luaservice, lua_path, lua_cpath, cluster, logger,
-- cluster_timeout (ms), cluster_heartbeat_ms, cluster_heartbeat_misses,
-- cluster_large_msg, cluster_channels (lanes: docs/PERFORMANCE.md),
-- cluster_watch (true: reload the map file when it changes),
-- max_msg_size, skc_log_level; the map kept in etcd: cluster =
-- "etcd://host:port/prefix" or cluster_etcd = "http(s)://host:port", with
-- cluster_etcd_prefix, cluster_etcd_ttl (s), cluster_etcd_cafile,
-- cluster_etcd_certfile, cluster_etcd_keyfile and cluster_listen (what
-- cluster.open(name) listens on; default 127.0.0.1:0); who may talk to
-- this node: cluster_cookie or cluster_cookie_file, cluster_tls_cert,
-- cluster_tls_key, cluster_tls_ca, cluster_tls_server_name,
-- cluster_names_only (docs/SECURITY.md).  Keys skc does not
-- need (thread, harbor, bootstrap, cpath, lualoader, daemon, ...) are
-- accepted and ignored.

local M = {}

local function dirname(path)
    return path:match("^(.*)/[^/]*$") or "."
end

local function read_file(path)
    local f, err = io.open(path, "rb")
    if not f then
        error("cannot read config: " .. tostring(err), 0)
    end
    local text = f:read("a")
    f:close()
    return text
end

local function expand(text, origin)
    return (text:gsub("%$([%w_]+)", function(name)
        local v = os.getenv(name)
        if v == nil then
            error(string.format("%s: environment variable %s is not set",
                origin, name), 0)
        end
        return v
    end))
end

-- Loads a config file into a table of strings.
function M.load_config(path)
    local result = {}
    local function include(file, base)
        if file:sub(1, 1) ~= "/" and base then
            file = base .. "/" .. file
        end
        local code = expand(read_file(file), file)
        local function inc(name)
            include(name, dirname(file))
        end
        -- Reads see what earlier lines assigned; writes land in result.
        local env = setmetatable({}, {
            __index = function(_, k)
                if k == "include" then
                    return inc
                end
                return result[k]
            end,
            __newindex = result,
        })
        local chunk, err = load(code, "@" .. file, "t", env)
        if not chunk then
            error("config: " .. tostring(err), 0)
        end
        local ok, rerr = pcall(chunk)
        if not ok then
            error("config: " .. tostring(rerr), 0)
        end
    end
    include(path, nil)
    local cfg = {}
    for k, v in pairs(result) do
        if type(k) == "string" then
            local t = type(v)
            if t == "string" then
                cfg[k] = v
            elseif t == "number" or t == "boolean" then
                cfg[k] = tostring(v)
            else
                error(string.format("config %s: key '%s' has a %s value "
                    .. "(only strings, numbers and booleans)", path, k, t), 0)
            end
        end
    end
    return cfg
end

local function prepend(old, new)
    if new == nil or new == "" then
        return old
    end
    if new:sub(-1) ~= ";" then
        new = new .. ";"
    end
    return new .. old
end

-- main(argv): argv[1] = config path.  Returns an exit code.
function M.run(config_path)
    local ok, cfg = pcall(M.load_config, config_path)
    if not ok then
        io.stderr:write("skc: ", tostring(cfg), "\n")
        return 1
    end
    package.path = prepend(package.path, cfg.lua_path)
    package.cpath = prepend(package.cpath, cfg.lua_cpath)
    local R = require "skc.runtime"
    local rok, code = pcall(R.run_config, cfg)
    if not rok then
        io.stderr:write("skc: ", tostring(code), "\n")
        return 1
    end
    return code or 0
end

return M
