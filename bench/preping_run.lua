-- One measurement for bench/preping.sh: N checkout+checkin cycles of an
-- engine in one pre-ping mode; prints the seconds the loop took.
--   lua bench/preping_run.lua MODE N
-- MODE: "bypass"  pool_pre_ping, used within pre_ping_bypass (0.5 s): no ping
--       "outside" pool_pre_ping, pre_ping_bypass 0.005 s, 10 ms between
--                 checkouts: each is pinged
--       "always"  pool_pre_ping, pre_ping_bypass 0: a ping at every checkout,
--                 as SQLAlchemy's pool_pre_ping does
--       "off"     no pre-ping at all
local dbpool = require "dbpool"
local sys = require "system"

local mode, n = arg[1], tonumber(arg[2])
local opts = {
  bypass = { pool_pre_ping = true, pre_ping_bypass = 0.5 },
  outside = { pool_pre_ping = true, pre_ping_bypass = 0.005 },
  always = { pool_pre_ping = true, pre_ping_bypass = 0 },
  off = { pool_pre_ping = false },
}
local o = assert(opts[mode], "mode must be bypass, outside, always or off")
o.name, o.dsn, o.pool_size, o.max_overflow = "bench_" .. mode, os.getenv("DBPOOL_TEST_DSN"), 1, 0
local e = dbpool.engine(o)
local pool = e.pool
pool:connect():close()          -- open the one connection before counting

local pause = mode == "outside" and 0.01 or nil
local t0 = sys.monotime()
for _ = 1, n do
  local c = pool:connect()
  c:close()
  if pause then sys.sleep(pause) end
end
io.write(("%.9f\n"):format(sys.monotime() - t0))
