-- bench/protocol.lua: issue 20's bulk paths against the plain ones, on one
-- connection of a throwaway server (scripts/with-pg.sh):
--   1. COPY_ROWS rows (default 1,000,000) by conn:copy_from from a Lua
--      array, against the same rows as single INSERTs (INSERT_ROWS of them,
--      default 20,000, timed and extrapolated to COPY_ROWS) and as one
--      pipeline of INSERTs (PIPELINE_ROWS, default 1,500, extrapolated:
--      a pipeline's statements are all held until it is sent, about 1 KB
--      each, so a million would take a gigabyte);
--   2. a 10-statement pipeline against the same 10 statements as 10 round
--      trips, ROUNDS times each (default 2,000).
-- Prints a Markdown table.  Run with nothing else on the machine:
--   make bench-protocol   (both Luas; sizes from the environment)
local dbpool = require "dbpool"
local core = require "dbpool.core"

local function size(name, default) return tonumber(os.getenv(name)) or default end
local COPY_ROWS = size("COPY_ROWS", 1000000)
local INSERT_ROWS = size("INSERT_ROWS", 20000)
local PIPELINE_ROWS = size("PIPELINE_ROWS", 1500)
local ROUNDS = size("ROUNDS", 2000)

local e = dbpool.engine { name = "bench_protocol", dsn = assert(os.getenv("DBPOOL_TEST_DSN")),
                          pool_size = 1, max_overflow = 0 }
local c = assert(e:connect())
assert(c:exec("DROP TABLE IF EXISTS bench_rows; " ..
              "CREATE UNLOGGED TABLE bench_rows (id int, name text, price float8)"))

local function row(i) return { i, "item " .. i, i * 0.25 } end
local function reset() assert(c:exec("TRUNCATE bench_rows")) end
local function timed(fn)
  local t0 = core.now()
  fn()
  return core.now() - t0
end
local function count() return assert(c:query("SELECT count(*)::int AS n FROM bench_rows"))[1].n end

local lua = rawget(_G, "jit") and jit.version or _VERSION
print(("## %s, PostgreSQL %s\n"):format(lua, assert(c:query("SHOW server_version"))[1].server_version))
print("| what | rows | seconds | rows/s | seconds per 1M rows |")
print("|---|---:|---:|---:|---:|")
local function report(what, n, seconds, note)
  print(("| %s | %d | %.3f | %.0f | %.2f%s |"):format(what, n, seconds, n / seconds,
    seconds / n * 1e6, note or ""))
end

-- 1. Bulk load.
reset()
local rows = {}
for i = 1, COPY_ROWS do rows[i] = row(i) end
local t = timed(function() assert(c:copy_from("COPY bench_rows FROM STDIN", rows)) end)
assert(count() == COPY_ROWS)
report("conn:copy_from (array of rows)", COPY_ROWS, t)
rows = nil
collectgarbage()

reset()
t = timed(function()
  for i = 1, INSERT_ROWS do
    local r = row(i)
    assert(c:query("INSERT INTO bench_rows VALUES ($1, $2, $3)", r[1], r[2], r[3]))
  end
end)
assert(count() == INSERT_ROWS)
report("single INSERTs (conn:query each)", INSERT_ROWS, t, " (extrapolated)")

reset()
local list = {}
for i = 1, PIPELINE_ROWS do
  local r = row(i)
  list[i] = { "INSERT INTO bench_rows VALUES ($1, $2, $3)", r[1], r[2], r[3] }
end
t = timed(function() assert(c:pipeline(list)) end)
assert(count() == PIPELINE_ROWS)
report("one pipeline of INSERTs", PIPELINE_ROWS, t, " (extrapolated)")
list = nil
collectgarbage()

-- 2. Ten statements: one pipeline against ten round trips.
print("\n| 10 statements (SELECT $1::int) | rounds | seconds | per round, ms |")
print("|---|---:|---:|---:|")
local ten = {}
for i = 1, 10 do ten[i] = { "SELECT $1::int AS i", i } end
t = timed(function() for _ = 1, ROUNDS do assert(c:pipeline(ten)) end end)
print(("| one pipeline | %d | %.3f | %.4f |"):format(ROUNDS, t, t / ROUNDS * 1e3))
t = timed(function()
  for _ = 1, ROUNDS do for i = 1, 10 do assert(c:query("SELECT $1::int AS i", i)) end end
end)
print(("| 10 round trips | %d | %.3f | %.4f |"):format(ROUNDS, t, t / ROUNDS * 1e3))

assert(c:exec("DROP TABLE bench_rows"))
c:close()
