g = { "x", weight = 3, x, 5, { "y" }, "g", "__opt", "" }
__opt = { "x" }
