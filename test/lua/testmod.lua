-- A module with state, to show that services do not share it.
return { n = 0 }
