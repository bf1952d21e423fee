local skynet = require "skynet"
local cluster = require "skynet.cluster"

skynet.start(function()
    -- 启动数据库服务
    local sdb = skynet.newservice("simpledb")

    cluster.register("sdb",sdb)

    print(skynet.call(sdb,"lua","SET","a","showsss"))

    print(skynet.call(sdb,"lua","GET","a"))
    
    -- 打开数据库节点监听
    cluster.open("db")  -- 对应 clustermap 中的 db 配置
    
    skynet.error("Database node ready")
end)
