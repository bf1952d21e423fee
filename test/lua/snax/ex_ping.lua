-- A snax service for test_cluster_examples and test_compat, like skynet's
-- test/pingserver.lua: a response that sleeps, accepts that share one
-- skynet.queue, an exit through snax.exit, a response that raises.
local skynet = require "skynet"
local queue = require "skynet.queue"
local snax = require "skynet.snax"

local count = 0
local cs

function response.ping(what)
    skynet.sleep(50)
    return what
end

function response.whoami()
    return snax.self().type, SERVICE_NAME
end

function accept.hello()
    cs(function()
        count = count + 1
        print(count, "hello")
    end)
end

-- Holds the queue for `ticks`, then records `tag` (test_compat reads the
-- order back with response.order).
local order = {}
function accept.hold(tag, ticks)
    cs(function()
        skynet.sleep(ticks)
        order[#order + 1] = tag
    end)
end

function response.order()
    return table.concat(order, " ")
end

function accept.exit(...)
    snax.exit(...)
end

function response.error()
    error "throw an error"
end

function init(...)
    print("ping server start:", ...)
    snax.enablecluster()
    cs = queue()
end

function exit(...)
    print("ping server exit:", ...)
end
