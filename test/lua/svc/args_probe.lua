-- Started by test_compat: answers "args" with the arguments it was started
-- with and their types (skynet hands them over as strings).
local skynet = require "skynet"
local args = table.pack(...)
skynet.start(function()
    skynet.dispatch("lua", function(_, _, cmd)
        if cmd == "args" then
            local types = {}
            for i = 1, args.n do types[i] = type(args[i]) end
            skynet.retpack(args.n, table.concat(args, "|", 1, args.n),
                table.concat(types, "|"))
        elseif cmd == "sleep" then
            skynet.sleep(60)
            skynet.retpack("slept")
        end
    end)
end)
