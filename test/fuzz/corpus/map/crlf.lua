a = [[x
y]]
b = "h:1"c = false
