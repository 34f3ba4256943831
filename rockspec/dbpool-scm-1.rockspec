-- dbpool: PostgreSQL connection pool for Lua 5.4 and LuaJIT 2.1, C core over libpq.
-- From a checkout (LuaRocks runs the Makefile: `make rock`, `make rock-install`):
--   luarocks --lua-version=5.4 make rockspec/dbpool-scm-1.rockspec
--   luarocks --lua-version=5.1 make rockspec/dbpool-scm-1.rockspec LUA_INCDIR=/usr/include/luajit-2.1
--   luarocks --lua-version=5.4 test rockspec/dbpool-scm-1.rockspec   (needs DBPOOL_TEST_DSN:
--                                             scripts/with-pg.sh luarocks ... test ...)
rockspec_format = "3.0"
package = "dbpool"
version = "scm-1"

source = {
  -- No published repository yet: this rockspec is for `luarocks make` in a
  -- checkout, which builds the files there and does not read source.url
  -- (`luarocks build`/`install`, which fetch it, do not work until then).
  url = "git+file://.",
}

description = {
  summary = "PostgreSQL connection pool (QueuePool semantics) with a C core over libpq",
  detailed = [[
Named engines with SQLAlchemy QueuePool semantics (pool_size, max_overflow,
pool_timeout, pool_recycle, reset on return), shared by every Lua state and
thread of a process. One C source tree builds for Lua 5.4 and LuaJIT 2.1
(PUC Lua 5.1 is refused at build time). Linux only: the pool's lock is a futex.
]],
  license = "MIT",
  labels = { "database", "postgresql", "pool" },
}

supported_platforms = { "linux" }

-- LuaJIT reports itself as Lua 5.1; PUC Lua 5.1 is refused by `make rock-check`.
-- lua-cjson decodes json and jsonb results and encodes dbpool.json (OpenResty
-- bundles it; Debian packages it as lua-cjson).
dependencies = {
  "lua >= 5.1",
  "lua-cjson",
}

-- Only the library is looked up: Debian keeps libpq-fe.h in
-- /usr/include/postgresql, other systems in /usr/include, and a rockspec
-- header is one path.  The Makefile looks in $(PQ_INCDIR) and
-- $(PQ_INCDIR)/postgresql and says so when it finds neither.
external_dependencies = {
  PQ = { library = "pq" },
}

build = {
  type = "make",
  build_target = "rock",
  build_variables = {
    CFLAGS = "$(CFLAGS)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    PQ_INCDIR = "$(PQ_INCDIR)",
    PQ_LIBDIR = "$(PQ_LIBDIR)",
  },
  install_target = "rock-install",
  install_variables = {
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
}

-- busted on the interpreter LuaRocks builds for, against DBPOOL_TEST_DSN.
test = {
  type = "command",
  script = "rockspec/run-specs.lua",
}
