-- groups: a name for a list of nodes, with an optional policy
db_a = "127.0.0.1:7311"
db_b = "127.0.0.1:7312"
db_c = false
db   = { "db_a", "db_b" }                        -- policy "failover" (default)
sdb  = { "db_a", "db_b", policy = "roundrobin" } -- also "random"
rdb  = { policy = 'random'; 'db_a'; [[db_c]], [==[db_b]==], }
fdb  = { ["policy"] = "failover", "db\x5fa" }
__nowaiting = true
