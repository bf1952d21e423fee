local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    -- 打开网关节点监听
    cluster.open("gate")  -- 对应 clustermap 中的 gate 配置
    
    -- 获取数据库服务代理
    local dbproxy = cluster.proxy("db", "@sdb")

    skynet.error("proxy",dbproxy)
    
    -- 测试跨节点调用
    skynet.call(dbproxy, "lua", "SET", "player_1001", '{name="Alice", level=10}')
    local data = skynet.call(dbproxy, "lua", "GET", "player_1001")
    skynet.error(data)

    skynet.fork(function()
		-- skynet.trace("cluster")
		skynet.error(cluster.call("db", "@sdb", "GET", "player_1001"))
	end)
    -- 动态添加新节点示例
    skynet.fork(function()
        skynet.sleep(100)
        cluster.reload({  -- 动态更新集群配置
            -- gate = "127.0.0.1:7101",    -- 网关节点
            db   = false,    -- 数据库节点
            db1 = "127.0.0.1:7103",   -- 新增节点
        })
        local sdb1 = skynet.newservice("simpledb")

        cluster.register("sdb1",sdb1)

        skynet.error("Cluster config updated!")
        local dbproxy = cluster.proxy("gate", "@sdb1")
        cluster.call("gate", "@sdb1", "SET", "player_1001","hishow")

        skynet.error(cluster.call("gate", "@sdb1", "GET", "player_1001"))
    end)
end)
