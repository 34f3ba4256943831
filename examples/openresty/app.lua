-- examples/openresty/app.lua: the Lua side of examples/openresty/nginx.conf.
--
--   init_by_lua_block        { require("app").init() }         -- master, before fork
--   init_worker_by_lua_block { require("app").init_worker() }  -- each worker
--   content_by_lua_block     { require("app").now(ngx.var.market) }
--   log_by_lua_block         { require("app").log_request(ngx.var.market) }
--   content_by_lua_block     { require("app").pool_stats() }   -- and the other handlers
--
-- Engines are declared once, in the master: the workers inherit them with
-- the master's Lua VM, so dbpool.get() and dbpool.engines() know them in
-- every worker.  Each worker then has its own connections; the monitoring
-- endpoints and /metrics answer for every worker of this nginx (their
-- numbers meet in shared memory).
--
-- Where dbpool may wait for PostgreSQL (README.md next to this file):
-- rewrite, access and content phases and timers yield to nginx while they
-- wait; init_by_lua may query, blocking (the master keeps no connection);
-- init_worker, set, header and body filters, log, balancer and ssl_* raise
-- at once: do the work from ngx.timer.at(0, fn, ...) there.
--
-- Every module is loaded here, in the master (which may be the only user
-- that can read them); workers load nothing on a request.
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

-- Each worker, at its start: min_idle pre-warming and the publishing of
-- its numbers to the instance begin now rather than at its first request.
function app.init_worker()
  dbpool.init_worker()
end

-- ---- per-market routes -------------------------------------------------------

-- GET /api/v1/markets/<market>/ping: a handler in the lua-resty libraries'
-- own style: msg is a string, so it prints as it is.
function app.ping(market)
  local engine = dbpool.engines()[market]
  if not engine then
    ngx.status = 404
    return ngx.say("unknown market ", market)
  end
  local rows, msg = engine:query("SELECT 1 AS ok")
  if not rows then
    ngx.status = 503
    return ngx.say("failed: ", msg)
  end
  ngx.say("ok ", rows[1].ok)
end

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

-- log_by_lua of the market routes: nginx cannot yield in the log phase, and
-- dbpool raises there rather than stall the worker; the statement runs from
-- a timer instead, after the request is done.
local function note_request(premature, market, status)
  if premature then return end
  local engine = dbpool.engines()[market]
  if not engine then return end
  local rows, msg = engine:query("SELECT $1::text AS market, $2::int AS status", market, status)
  if not rows then ngx.log(ngx.WARN, "market ", market, ": request note failed: ", msg) end
end

function app.log_request(market)
  local ok, err = ngx.timer.at(0, note_request, market, ngx.status)
  if not ok then ngx.log(ngx.WARN, "no timer for the request note: ", err) end
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

-- GET /metrics: Prometheus text, every engine and every worker of this
-- nginx (series labelled worker): any worker's answer is the instance's.
function app.metrics()
  ngx.header.content_type = "text/plain; version=0.0.4"
  ngx.print(dbpool.metrics())
end

return app
