-- Peer for the dbpool comparison benchmark: LuaSQL (Debian lua-sql-postgres,
-- luasql 2.6), what a plain Lua program uses today.  LuaSQL has no pool, so
-- this is one persistent connection.
--   lua5.4 bench/peers/luasql_select.lua MODE N     (or luajit: the 5.1 build)
-- MODE
--   select1  per iteration: conn:execute("SELECT 1") (PQexec, simple query
--            protocol, one round trip), fetch the row, close the cursor.
--   cycle    not applicable (no pool): prints 0.
-- DSN from $DBPOOL_TEST_DSN: luasql passes its "sourcename" to
-- PQsetdbLogin as the dbName, and libpq takes a dbName that is a URI or holds
-- '=' as a full conninfo string, so the URI is used as is.
-- Prints ONE line: the seconds the timed loop took (monotonic clock, from
-- lua-system, as bench/preping_run.lua).  Warm-up: connect + 100 queries.
local driver = require "luasql.postgres"
local sys = require "system"

local mode, n = arg[1], tonumber(arg[2])
assert(mode and n and n > 0, "usage: luasql_select.lua select1|cycle N")
if mode == "cycle" then
  io.write("0\n")
  return
end
assert(mode == "select1", "mode must be select1 or cycle")
local dsn = assert(os.getenv("DBPOOL_TEST_DSN"), "DBPOOL_TEST_DSN is not set")

local env = assert(driver.postgres())
local conn = assert(env:connect(dsn))

local function select1()
  local cur = assert(conn:execute("SELECT 1"))
  local v = cur:fetch()
  cur:close()
  return v
end

for _ = 1, 100 do assert(select1() == "1", "SELECT 1 did not return 1") end

local t0 = sys.monotime()
for _ = 1, n do
  if select1() ~= "1" then error("SELECT 1 did not return 1") end
end
local t = sys.monotime() - t0
assert(select1() == "1")
conn:close()
env:close()
io.write(("%.9f\n"):format(t))
