-- The seed's cluster with a backup database node (issue #12).
return {
  gate      = "127.0.0.1:7101",  -- 网关节点 (the gate)
  db_main   = "127.0.0.1:7102",  -- 数据库节点 (the database node)
  db_backup = "127.0.0.1:7103",  -- 备用节点 (its backup)
  -- A group: "db" is the first of its members that is up, in order.
  -- Calls to "db" go to db_main while it is up, to db_backup while it is
  -- down, and back to db_main when it returns.
  db = { "db_main", "db_backup" },
}
