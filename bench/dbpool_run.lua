-- One timed run for bench/run.sh: N cycles from Lua on one pooled connection,
-- after a warm-up; prints the loop's seconds.
--   lua bench/dbpool_run.lua cycle|select1|select1_prepared N
-- select1_prepared: prepare_threshold = 5, pgjdbc's default, as HikariCP runs.
local dbpool = require "dbpool"
local sys = require "system"
local mode, n = arg[1], tonumber(arg[2])
assert(mode == "cycle" or mode == "select1" or mode == "select1_prepared",
  "mode must be cycle, select1 or select1_prepared")
local e = dbpool.engine { name = "bench_" .. mode, dsn = os.getenv("DBPOOL_TEST_DSN"),
                          pool_size = 1, max_overflow = 0,
                          prepare_threshold = mode == "select1_prepared" and 5 or 0 }
local pool = e.pool
local function loop(count)
  if mode ~= "cycle" then
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
