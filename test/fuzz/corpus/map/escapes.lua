a = "\a\b\f\n\r\t\v\\\"\'"; b = '\65\x41\u{20AC}\z
   c'
v6 = "[::1]:7000"; __n = -12; __m = 007
c = [==[
long ]] ]=] string]==] --[=[ long
comment ]=]
return { ["q"] = false, r = "tls+tcp://h:1"; s = [[ws://h:1/p]], };
