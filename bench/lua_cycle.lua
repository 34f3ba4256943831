-- N checkout + checkin cycles from Lua on one pooled connection (for
-- callgrind: bench/metrics.sh and the instruction counts of bench/).
--   lua bench/lua_cycle.lua N [select1|engine_query]
-- select1: connect, query, close; engine_query: engine:query, which makes
-- no Conn (pool:query).
local dbpool = require "dbpool"
local n, select1, engine_query = tonumber(arg[1]), arg[2] == "select1", arg[2] == "engine_query"
local e = dbpool.engine { name = "bench_lua_cycle", dsn = os.getenv("DBPOOL_TEST_DSN"),
                          pool_size = 1, max_overflow = 0 }
local pool = e.pool
pool:connect():close()
if engine_query then
  for _ = 1, n do e:query("SELECT 1") end
  return
end
for _ = 1, n do
  local c = pool:connect()
  if select1 then c:query("SELECT 1") end
  c:close()
end
