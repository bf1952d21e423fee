return { x = "h:1", y = "h:2", g = { "x", "y", 'x' }, e = { } }
