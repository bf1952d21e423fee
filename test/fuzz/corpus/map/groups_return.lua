return { g = { 'x', "y"; policy = 'random', }, ["h"] = {"x"},
  x = "127.0.0.1:7001", y = "ipc:///tmp/y.sock",
  ["a group"] = {
    "x",  -- first
    "y",  --[[ second ]]
    [ [[policy]] ] = "roundrobin";
  };
}
