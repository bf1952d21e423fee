x = "unfinished
y = "z"
