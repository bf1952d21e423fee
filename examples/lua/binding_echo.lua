-- binding_echo.lua -- the low-level `skc` module without the skynet layer:
-- two nodes in one process, a service with a Lua handler, an async call,
-- a deferred reply, and the poll loop that runs them all on this thread.
--
--   LUA_CPATH='build/lua/?.so;;' lua5.4 examples/lua/binding_echo.lua
local skc = require "skc"

local server <close> = assert(skc.node { name = "server" })
local client <close> = assert(skc.node { name = "client" })

local url = assert(server:open("127.0.0.1:0")) -- any free port
assert(client:map_set("server", url))           -- the cluster map entry

-- A service: its handler runs inside server:poll().
local later = {}
local echo = assert(server:service(function(msg)
    local args = { skc.unpack(msg:data()) }
    if args[1] == "later" then
        later[#later + 1] = msg:defer()   -- answer after the handler
    else
        msg:reply(skc.pack("echo", table.unpack(args)))
    end
end))
assert(server:register("@echo", echo))

local pending = 0
local function call(...)
    pending = pending + 1
    assert(client:call_async("server", "@echo", skc.pack(...), 2000,
        function(reply, err, code)
            pending = pending - 1
            if reply then
                print("reply:", skc.unpack(reply))
            else
                print("failed:", err, code)
            end
        end))
end

call("hello", 42, { list = { 1, 2, 3 } })
call("later")
local _, err, code = client:call("server", "@nobody", "", 500)
print("blocking call to @nobody:", err, code)

for _ = 1, 200 do                       -- at most ~2 s
    if pending == 0 then break end
    server:poll(5)
    for _, r in ipairs(later) do r:send(skc.pack("answered later")) end
    later = {}
    client:poll(5)
end
