-- N checkout + checkin cycles from Lua on one pooled connection (for
-- callgrind: bench/metrics.sh and the instruction counts of bench/).
--   lua bench/lua_cycle.lua N [select1]
local dbpool = require "dbpool"
local n, select1 = tonumber(arg[1]), arg[2] == "select1"
local e = dbpool.engine { name = "bench_lua_cycle", dsn = os.getenv("DBPOOL_TEST_DSN"),
                          pool_size = 1, max_overflow = 0 }
local pool = e.pool
pool:connect():close()
for _ = 1, n do
  local c = pool:connect()
  if select1 then c:query("SELECT 1") end
  c:close()
end
