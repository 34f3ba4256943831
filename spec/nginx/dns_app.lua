-- spec/nginx/dns_app.lua: handlers of spec/nginx/dns.conf.  Each answers
-- JSON with the server-side seconds the request took (ngx.now() after
-- ngx.update_time(): the real clock).
local dbpool = require "dbpool"
local json = require("cjson").new()

local app = {}

function app.init()        -- init_by_lua: the master, which connects nowhere here
  local dsn = os.getenv("DBPOOL_TEST_DSN")
  if not dsn or dsn == "" then error("DBPOOL_TEST_DSN is not set (run under scripts/with-pg.sh)") end
  -- The throwaway server's DSN (scripts/pg-start.sh) with a name for its address.
  assert(dsn:match("^postgresql://[^@]*@127%.0%.0%.1:%d+/"), "unexpected DBPOOL_TEST_DSN")
  local function on(host)
    return (dsn:gsub("@127%.0%.0%.1:", "@" .. host .. ":", 1))
  end
  dbpool.engine { name = "NAMED", dsn = on("db.dbpool.test"), pool_size = 1, max_overflow = 0,
                  pool_timeout = 20, connect_timeout = 20, application_name = "dbpool-nginx-dns" }
  dbpool.engine { name = "UNKNOWN", dsn = on("nx.dbpool.invalid"), pool_size = 1,
                  max_overflow = 0, pool_timeout = 20, connect_timeout = 20 }
end

local function clock()
  ngx.update_time()
  return ngx.now()
end

local function reply(t) ngx.say(json.encode(t)) end

function app.named()
  local t0 = clock()
  local conn, msg = dbpool.get("NAMED"):connect()
  if not conn then return reply { error = msg, seconds = clock() - t0 } end
  local rows, qmsg = conn:query("SELECT 1 AS one")
  conn:invalidate()                       -- the next request connects again
  reply { one = rows and rows[1].one, error = qmsg, seconds = clock() - t0 }
end

function app.unknown()
  local t0 = clock()
  local conn, msg, err = dbpool.get("UNKNOWN"):connect()
  if conn then conn:close() end
  reply { connected = conn ~= nil, error = msg, kind = err and err.kind, seconds = clock() - t0 }
end

function app.yield()
  local t0 = clock()
  ngx.sleep(tonumber(ngx.var.arg_ms or 50) / 1000)
  reply { seconds = clock() - t0 }
end

return app
