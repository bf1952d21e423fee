-- The skc Lua module and skynet layer for LuaRocks, built against an
-- installed libskc (cmake --install; docs/LUA.md, "LuaRocks"):
--   luarocks make bindings/lua/skc-0.4.0-1.rockspec SKC_DIR=/usr/local
-- run from the top of a checkout.  The version is skc.h's
-- SKC_VERSION_STRING (test/install checks that they agree, and that every
-- lua/*.c and lua/**/*.lua file is listed here).
rockspec_format = "3.0"
package = "skc"
version = "0.4.0-1"
source = {
   -- skc is not published yet: `luarocks make` builds from the checkout
   -- it runs in and never fetches this.
   url = "git+file:///skc",
   tag = "v0.4.0",
}
description = {
   summary = "skynet-style cluster nodes over NNG: Lua binding and skynet layer",
   detailed = [[
The `skc` module (nodes, calls, sends, services, maps, MessagePack) and the
skynet-compatible layer (skynet, skynet.cluster, skynet.snax,
skynet.queue, skynet.manager), over the C library libskc.
]],
   license = "see the skc repository",
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   SKC = {
      header = "skc/skc.h",
      library = "skc",
   },
}
build = {
   type = "builtin",
   modules = {
      skc = {
         sources = {
            "lua/lskc.c",
            "lua/lskc_call.c",
            "lua/lskc_health.c",
            "lua/lskc_map.c",
            "lua/lskc_msg.c",
            "lua/lskc_node.c",
            "lua/lskc_pack.c",
            "lua/lskc_result.c",
         },
         defines = { "_GNU_SOURCE" },
         libraries = { "skc" },
         incdirs = { "$(SKC_INCDIR)" },
         libdirs = { "$(SKC_LIBDIR)" },
      },
      skynet = "lua/skynet.lua",
      ["skynet.cluster"] = "lua/skynet/cluster.lua",
      ["skynet.manager"] = "lua/skynet/manager.lua",
      ["skynet.queue"] = "lua/skynet/queue.lua",
      ["skynet.snax"] = "lua/skynet/snax.lua",
      ["skc.launcher"] = "lua/skc/launcher.lua",
      ["skc.runtime"] = "lua/skc/runtime.lua",
      ["skc.service.snaxd"] = "lua/skc/service/snaxd.lua",
   },
}
