-- One timed run for bench/run.sh: N cycles from Lua on one pooled connection,
-- after a warm-up; prints the loop's seconds.
--   lua bench/dbpool_run.lua MODE N
-- MODE: cycle (connect + close), select1 (connect + query + close),
-- query (engine:query, one call, no Conn); *_prepared: with
-- prepare_threshold = 5, pgjdbc's default, as HikariCP runs.
local dbpool = require "dbpool"
local sys = require "system"
local mode, n = arg[1], tonumber(arg[2])
local modes = { cycle = true, select1 = true, select1_prepared = true, query = true,
                query_prepared = true }
assert(modes[mode], "mode must be cycle, select1, select1_prepared, query or query_prepared")
local e = dbpool.engine { name = "bench_" .. mode, dsn = os.getenv("DBPOOL_TEST_DSN"),
                          pool_size = 1, max_overflow = 0,
                          prepare_threshold = mode:match("_prepared$") and 5 or 0 }
local pool = e.pool
local function loop(count)
  if mode:match("^query") then
    for _ = 1, count do e:query("SELECT 1") end
  elseif mode ~= "cycle" then
    for _ = 1, count do
      local c = pool:connect()
      c:query("SELECT 1")
      c:close()
    end
  else
    for _ = 1, count do pool:connect():close() end
  end
end
loop(math.min(n, 2000))             -- warm-up (and LuaJIT's traces)
local t0 = sys.monotime()
loop(n)
io.write(("%.9f\n"):format(sys.monotime() - t0))
