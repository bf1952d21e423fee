-- skynet.manager -- register, name, kill, abort (already on skynet itself;
-- skynet's manager module adds them to the skynet table, so does this one).
local skynet = require "skynet"

-- launch(name, ...) in skynet starts a C or snlua service; here only Lua
-- services exist, so "snlua name" and "name" both start a Lua service.
function skynet.launch(name, ...)
    local svc = name:match("^snlua%s+(.+)$") or name
    return skynet.newservice(svc, ...)
end

return skynet
