-- One timed run for bench/run.sh: N cycles from Lua on one pooled connection,
-- after a warm-up; prints the loop's seconds.
--   lua bench/dbpool_run.lua cycle|select1 N
local dbpool = require "dbpool"
local sys = require "system"
local mode, n = arg[1], tonumber(arg[2])
assert(mode == "cycle" or mode == "select1", "mode must be cycle or select1")
local e = dbpool.engine { name = "bench_" .. mode, dsn = os.getenv("DBPOOL_TEST_DSN"),
                          pool_size = 1, max_overflow = 0 }
local pool = e.pool
local function loop(count)
  if mode == "select1" then
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
