__nowaiting = true
db = "127.0.0.1:2528"
db2 = "127.0.0.1:2529"
old = false
["node-with-dash"] = "ipc:///tmp/x.sock"
--[[ block
comment ]]
