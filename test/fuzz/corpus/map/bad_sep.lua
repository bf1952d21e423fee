return { a = "x" b = "y" }
