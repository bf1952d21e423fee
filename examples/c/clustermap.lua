-- The seed's cluster map (examples/lua/skynet_cluster/clustermap.lua).
return {
  gate = "127.0.0.1:7101",  -- gate node
  db   = "127.0.0.1:7102",  -- database node
  -- more nodes can be added at run time, e.g.:
  -- cache = "192.168.1.100:7103",
}
