-- skynet.queue -- critical sections among the coroutines of one service.
--
--   local queue = require "skynet.queue"
--   local cs = queue()
--   cs(f, ...)   -- runs f(...) while no other coroutine runs inside cs
--
-- A coroutine that finds the section taken waits (skynet.wait) and enters
-- in arrival order; one already inside may enter again (re-entrant).
-- cs returns f's results; if f raises, the section is released and the
-- error goes on to the caller.
local skynet = require "skynet"

local coroutine_running = coroutine.running

function skynet.queue()
    local owner       -- the coroutine inside, or nil
    local depth = 0   -- how many times owner has entered
    local waiters = {}
    local head, tail = 1, 0

    local function leave(ok, ...)
        depth = depth - 1
        if depth == 0 then
            owner = nil
            if head <= tail then
                -- Hand the section over before waking the next waiter, so
                -- a coroutine arriving meanwhile queues behind it.
                owner = waiters[head]
                waiters[head] = nil
                head = head + 1
                skynet.wakeup(owner)
            end
        end
        if not ok then
            error((...), 0)
        end
        return ...
    end

    return function(f, ...)
        local co = coroutine_running()
        if owner ~= nil and owner ~= co then
            tail = tail + 1
            waiters[tail] = co
            skynet.wait(co)
        end
        owner = co
        depth = depth + 1
        return leave(pcall(f, ...))
    end
end

return skynet.queue
