-- dbpool: PostgreSQL connection pool for Lua 5.4 and LuaJIT, C core over libpq.
-- Build from a checkout:   luarocks make rockspec/dbpool-scm-1.rockspec
-- Debian/Ubuntu keep libpq-fe.h in /usr/include/postgresql; tell luarocks so:
--   luarocks make rockspec/dbpool-scm-1.rockspec PQ_INCDIR=/usr/include/postgresql
rockspec_format = "3.0"
package = "dbpool"
version = "scm-1"

source = {
  url = "git+file://.",   -- scm rockspec: built from a checkout with `luarocks make`
}

description = {
  summary = "PostgreSQL connection pool (QueuePool semantics) with a C core over libpq",
  detailed = [[
Named engines with SQLAlchemy QueuePool semantics (pool_size, max_overflow,
pool_timeout, pool_recycle, reset on return), shared by every Lua state and
thread of a process. One C source tree builds for Lua 5.4 and LuaJIT 2.1.
]],
  license = "MIT",
  labels = { "database", "postgresql", "pool" },
}

dependencies = {
  "lua >= 5.1",
}

external_dependencies = {
  PQ = {
    header = "libpq-fe.h",
    library = "pq",
  },
}

build = {
  type = "builtin",
  modules = {
    ["dbpool.core"] = {
      sources = {
        -- core (no Lua headers)
        "csrc/error.c", "csrc/config.c", "csrc/policy.c", "csrc/redact.c", "csrc/conn.c",
        "csrc/conn_exec.c", "csrc/result.c", "csrc/stmt_cache.c", "csrc/breaker.c",
        "csrc/lock.c", "csrc/fork.c", "csrc/cap.c", "csrc/pool.c", "csrc/pool_slots.c",
        "csrc/pool_connect.c", "csrc/pool_leak.c", "csrc/pool_stmt.c", "csrc/metrics.c",
        "csrc/registry.c",
        -- Lua binding
        "csrc/lua_core.c", "csrc/lua_util.c", "csrc/lua_config.c", "csrc/lua_registry.c",
        "csrc/lua_pool.c", "csrc/lua_conn.c", "csrc/lua_params.c", "csrc/lua_log.c",
        "csrc/lua_result.c", "csrc/lua_error.c", "csrc/lua_policy.c",
        -- built without nginx's headers here: under nginx, requests poll
        -- (`make` builds the event-driven wait, scripts/ngx-headers.sh)
        "csrc/lua_ngx_wait.c",
      },
      defines = { "_GNU_SOURCE" },
      incdirs = { "csrc", "$(PQ_INCDIR)" },
      libdirs = { "$(PQ_LIBDIR)" },
      libraries = { "pq", "pthread", "m" },
    },
    ["dbpool"] = "lua/dbpool/init.lua",
    ["dbpool.policy"] = "lua/dbpool/policy.lua",
    ["dbpool.configure"] = "lua/dbpool/configure.lua",
    ["dbpool.budget"] = "lua/dbpool/budget.lua",
    ["dbpool.assertions"] = "lua/dbpool/assertions.lua",
    ["dbpool.health"] = "lua/dbpool/health.lua",
    ["dbpool.advise"] = "lua/dbpool/advise.lua",
    ["dbpool.metrics"] = "lua/dbpool/metrics.lua",
    ["dbpool.ngx"] = "lua/dbpool/ngx.lua",
  },
}
