x = "127.0.0.1:7001"
g = { "x", policy = "fastest" }
