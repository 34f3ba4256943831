-- examples/openresty/app.lua: the Lua side of examples/openresty/nginx.conf.
--
--   init_by_lua_block    { require("app").init() }           -- master, before fork
--   content_by_lua_block { require("app").now(ngx.var.market) }
--   content_by_lua_block { require("app").pool_stats() }      -- and the other handlers
--
-- Engines are declared once, in the master: the workers inherit them with
-- the master's Lua VM, so dbpool.get() and dbpool.engines() know them in
-- every worker.  Each worker then has its own connections, and its own
-- counters: the monitoring endpoints answer for the worker that served the
-- request (its id and pid are in every JSON body).
--
-- Today's dbpool core blocks the worker while it waits for a connection or
-- a query (see README.md next to this file).
local dbpool = require "dbpool"

-- A private cjson instance, so its settings are not changed for other code.
local json = require("cjson").new()
json.encode_invalid_numbers("null")     -- never fail a response on a NaN/inf
json.encode_sparse_array(true)

local app = {}

-- ---- JSON replies ----------------------------------------------------------

-- Debian's lua-cjson (2.1.0) encodes an empty table as {}; it lacks
-- OpenResty's empty_array_mt.  Lists that may be empty are marked with
-- app.array(t) and written as [] by reply().
local EMPTY = "\0dbpool-empty-array\0"
local function array(t)
  if #t == 0 then return EMPTY end
  return t
end
local EMPTY_JSON = json.encode(EMPTY)

local function reply(status, body)
  ngx.status = status
  ngx.header.content_type = "application/json"
  local text = json.encode(body):gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]")
  ngx.say(text)
end

local function worker()
  return { id = ngx.worker.id(), pid = ngx.worker.pid() }
end

-- A runtime failure (nil, msg, err) as a JSON body.
local function failure(msg, err)
  return { error = msg, kind = err and err.kind, sqlstate = err and err.sqlstate }
end

-- ---- engines: init_by_lua (master) -------------------------------------------

local function env(name)               -- an empty variable counts as unset
  local v = os.getenv(name)
  return v ~= "" and v or nil
end

app.markets = { "KG", "US" }

function app.init()
  local kg, us = env("DATABASE_URL_KG"), env("DATABASE_URL_US")
  if not (kg and us) then
    -- Raised in init_by_lua: nginx refuses to start and logs this.
    error("set DATABASE_URL_KG and DATABASE_URL_US (and list them in nginx.conf's `env` directives)")
  end
  dbpool.configure {
    env = env("DBPOOL_ENV") or "development",
    defaults = { pool_pre_ping = true, application_name = "dbpool-openresty-example",
                 pool_timeout = 5 },
    environments = {
      development = { pool_size = 5, max_overflow = 5 },
      test = { pool_size = 2, max_overflow = 3, policy = "test" },
      production = { pool_size = 10, max_overflow = 20, pool_recycle = 3600,
                     pool_timeout = 30, policy = "production" },
    },
    markets = { KG = { dsn = kg }, US = { dsn = us } },
  }
end

-- ---- per-market routes -------------------------------------------------------

-- GET /api/v1/markets/<market>/now
function app.now(market)
  local engine = dbpool.engines()[market]      -- only the configured markets
  if not engine then
    return reply(404, { error = "unknown market " .. market, markets = app.markets })
  end
  local rows, msg, err = engine:query(
    "SELECT now()::text AS now, current_database() AS database, pg_backend_pid() AS backend_pid")
  if not rows then
    ngx.log(ngx.WARN, "market ", market, ": ", msg)
    return reply(503, failure(msg, err))
  end
  local row = rows[1]
  return reply(200, { market = market, now = row.now, database = row.database,
                      backend_pid = row.backend_pid, worker = worker() })
end

-- ---- monitoring --------------------------------------------------------------

-- engine:stats() with each histogram summarized: count, sum, mean and
-- quantiles, without the 24 raw buckets (/metrics has those).
local function summarized(stats)
  local out = {}
  for k, v in pairs(stats) do
    if type(v) == "table" and v.buckets then
      out[k] = { count = v.count, sum = v.sum, mean = v.mean, p50 = v.p50, p95 = v.p95, p99 = v.p99 }
    else
      out[k] = v
    end
  end
  return out
end

local function each_engine(fn)
  local out = {}
  for name, engine in pairs(dbpool.engines()) do out[name] = fn(engine) end
  return out
end

-- GET /api/v1/monitoring/pool-stats
function app.pool_stats()
  return reply(200, {
    worker = worker(),
    engines = each_engine(function(engine) return summarized(engine:stats()) end),
  })
end

-- GET /api/v1/monitoring/pool-metrics/detailed
function app.pool_metrics_detailed()
  return reply(200, {
    worker = worker(),
    engines = each_engine(function(engine)
      return {
        engine = tostring(engine),            -- name and DSN, password redacted
        pool = engine.pool:status(),
        stats = summarized(engine:stats()),
        advise = engine:advise(),
      }
    end),
  })
end

-- GET /api/v1/monitoring/health/database: 200 when every engine is healthy
-- or degraded (it still serves), 503 when any is down.
function app.health()
  local rank = { healthy = 1, degraded = 2, down = 3 }
  local overall = "healthy"
  local engines = each_engine(function(engine)
    local h = engine:health()
    if rank[h.status] > rank[overall] then overall = h.status end
    h.reasons = array(h.reasons)
    return h
  end)
  return reply(overall == "down" and 503 or 200,
    { status = overall, engines = engines, worker = worker() })
end

-- GET /metrics: Prometheus text, every engine of this worker process.
function app.metrics()
  ngx.header.content_type = "text/plain; version=0.0.4"
  ngx.print(dbpool.metrics())
end

return app
