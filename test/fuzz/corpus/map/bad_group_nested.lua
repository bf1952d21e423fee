x = "127.0.0.1:7001"
inner = { "x" }
outer = { "x", "inner", policy = "failover" }
