return {}
return { a = "h:1" }
