-- examples/scale/scale.lua: the Lua side of examples/scale/nginx.conf, the
-- seed's 10,000-user deployment scaled to one 2-core machine (issue 23).
--
--   init_by_lua_block        { require("scale").init() }         -- master: engines + budget
--   init_worker_by_lua_block { require("scale").init_worker() }  -- each worker: pre-warm
--   GET /item/<id>      a read by id       (standby, falls back to the primary)
--   GET /items/<cat>    a 20-row list      (standby, falls back to the primary)
--   GET /order/<item>   a write in a transaction (primary, through PgBouncer)
--   GET /scale/stats    every pool's numbers, all workers (JSON, for run.sh)
--   GET /metrics        dbpool.metrics(): Prometheus text
--
-- Every answer carries X-Elapsed (seconds since nginx read the request) and
-- X-Deadline (the most this route may take by the timeouts below).  The app
-- also counts every answer itself (shared dict `scale`): a latency histogram,
-- the answers past their deadline and the slowest, per worker.  wrk sees only
-- the answers that arrive before it stops; these counts include the ones
-- that end after it has gone (at 10,000 connections a quarter of all, and
-- the ones that waited longest), and run.sh reports them.
local dbpool = require "dbpool"
local json = require("cjson").new()

local M = {}

-- ---- the configuration: the seed's, scaled to this machine -----------------
-- The seed: app instances with pools of 35, 15 of them pre-warmed; here an
-- instance is an nginx worker (2).  A pool of 35 is pool_size 35 (kept once
-- opened), not 15 + 20 overflow: QueuePool closes overflow on return, and
-- every overflow checkout through PgBouncer would pay a SCRAM login.
-- Timeouts are explicit so that every request has a deadline.
M.options = {
  name = "shop",
  pgbouncer = true,                 -- the write path goes through PgBouncer (transaction mode)
  pool_size = 35, max_overflow = 0, min_idle = 15,
  -- No request is refused for want of a connection while it is younger
  -- than this: at 10,000 connections wrk keeps 10,000 requests in flight,
  -- and the queue for 70 connections is seconds long (Little's law).
  pool_timeout = 10,
  connect_timeout = 2,
  query_timeout = 2,                -- a statement at most 2 s (cancel, then discard)
  reset_timeout = 1, ping_timeout = 1,
  -- No pre-ping: under nginx the ping is one blocking round trip
  -- (docs/decisions.md), and behind PgBouncer in transaction mode it waits
  -- for a free server connection, so it stalled a whole worker for up to
  -- ping_timeout per checkout at 1,000 connections.  A dead connection is
  -- still noticed by its failure, which retires every older one.
  pool_pre_ping = false,
  max_queries = 5000,               -- the seed's rotation
  breaker = { failures = 5, cooldown = 2 },
  application_name = "dbpool-scale",
}
-- worker_processes, as run.sh passed it to nginx (scripts/nginx-start.sh's
-- @WORKERS@): dbpool.budget multiplies the pools by it.
M.workers = nil                     -- set by M.init from DBPOOL_NGINX_WORKERS
M.reserve = 10                      -- PgBouncer clients beyond the pools: run.sh's console queries

-- What a route may take at most, from these options: a read may try the
-- standby (a checkout) and then fall back to the primary (another); a write
-- is BEGIN, INSERT, UPDATE, COMMIT after one checkout, and a ROLLBACK on
-- return when something failed.  Plus 0.1 s for nginx's own turn.
local o = M.options
M.deadline = {
  read = 2 * o.pool_timeout + o.query_timeout + o.reset_timeout + 0.1,
  write = o.pool_timeout + 4 * o.query_timeout + o.reset_timeout + 0.1,
}

local function env(name)
  local v = os.getenv(name)
  if not v or v == "" then
    error("examples/scale: set " .. name .. " (and list it in nginx.conf's `env` directives)")
  end
  return v
end

-- dbpool.budget against the live servers, before nginx serves anything:
-- the pools through PgBouncer against its max_client_conn (and PgBouncer's
-- server connections against the primary's max_connections), the replica
-- pools against the standby's max_connections.  Raises with budget's own
-- sentence when either does not fit: nginx then refuses to start.
local function check_budget(engine)
  local console = dbpool.engine { name = "scale-pgbouncer-console", dsn = env("DBPOOL_PGB_ADMIN_DSN"),
                                  pgbouncer = true, pool_size = 1, max_overflow = 0, pool_timeout = 5 }
  local standby = dbpool.engine { name = "scale-standby-check", dsn = env("DBPOOL_STANDBY_APP_DSN"),
                                  pool_size = 1, max_overflow = 0, pool_timeout = 5 }
  local via, msg = dbpool.budget { instances = M.workers, engines = { shop = engine },
                                   reserve = M.reserve, live = engine, pgbouncer = console }
  local replica_opts = { pool_size = o.pool_size, max_overflow = o.max_overflow }
  local reads, msg2
  if via then
    reads, msg2 = dbpool.budget { instances = M.workers, engines = { ["shop/replica1"] = replica_opts },
                                  live = standby }
  end
  dbpool.remove("scale-pgbouncer-console")
  dbpool.remove("scale-standby-check")
  if not via then error("examples/scale: budget could not read PgBouncer's or the server's limits: " .. msg, 0) end
  if not reads then error("examples/scale: budget could not read the standby's limits: " .. msg2, 0) end
  if not via.fits or not via.server_fits then error("examples/scale: writes: " .. via.sentence, 0) end
  if not reads.fits then error("examples/scale: reads: " .. reads.sentence, 0) end
  ngx.log(ngx.NOTICE, "dbpool.budget, writes through PgBouncer: ", via.sentence)
  ngx.log(ngx.NOTICE, "dbpool.budget, reads on the standby: ", reads.sentence)
  return via, reads
end

function M.init()
  M.workers = tonumber(env("DBPOOL_NGINX_WORKERS"))
  if not M.workers or M.workers < 1 or M.workers % 1 ~= 0 then
    error("examples/scale: DBPOOL_NGINX_WORKERS must be a worker count (run.sh resolves auto), got "
          .. tostring(os.getenv("DBPOOL_NGINX_WORKERS")), 0)
  end
  local options = {}
  for k, v in pairs(M.options) do options[k] = v end
  options.dsn = env("DBPOOL_PGB_DSN")
  options.replicas = { env("DBPOOL_STANDBY_APP_DSN") }
  M.engine = dbpool.engine(options)
  M.budget_writes, M.budget_reads = check_budget(M.engine)
end

function M.init_worker()
  dbpool.init_worker()
end

-- ---- answers ------------------------------------------------------------------

local counts = ngx.shared.scale      -- per outcome, every worker: run.sh's consistency check

local function count(key)
  local ok, err = counts:incr(key, 1, 0)
  if not ok then ngx.log(ngx.WARN, "scale: counter ", key, ": ", err) end
end

-- The latency histogram: bucket k holds answers of (10^((k-1)/20),
-- 10^(k/20)] ms, 20 a decade (each 12% wide), k = 0 for 1 ms or less and
-- LAT_TOP for more than 10^(LAT_TOP/20) ms = 63 s.  Keys "lat:<k>".
local LAT_STEP, LAT_TOP = 20, 97

-- elapsed (s) into the histogram, the route's late count and this worker's
-- slowest.  A worker runs one handler at a time and nothing here yields, so
-- its own max key needs no lock.
local function record(route, elapsed, deadline)
  local ms = elapsed * 1000
  local k = ms <= 1 and 0 or math.min(LAT_TOP, math.ceil(LAT_STEP * math.log10(ms) - 1e-9))
  count("lat:" .. k)
  if elapsed > deadline then count("late_" .. route) end
  local key = "max_ms:" .. ngx.worker.id()
  if ms > (counts:get(key) or 0) then counts:set(key, ms) end
end

local function reply(route, status, body, deadline)
  ngx.update_time()
  ngx.status = status
  local elapsed = ngx.now() - ngx.req.start_time()
  record(route, elapsed, deadline)
  ngx.header["X-Elapsed"] = ("%.4f"):format(elapsed)
  ngx.header["X-Deadline"] = ("%.2f"):format(deadline)
  ngx.header.content_type = "application/json"
  ngx.say(json.encode(body))
end

-- A request's outcome: 200 with rows; 503 with the error's kind when dbpool
-- gave up (timeout, circuit_open, connect, query_timeout, ...), counted as
-- "failed_<route>_<kind>" (route: read or write).
local function answer(route, deadline, rows, msg, err)
  if rows then
    count("ok_" .. route)
    return reply(route, 200, rows, deadline)
  end
  local kind = type(err) == "table" and err.kind or "error"
  count("failed_" .. route .. "_" .. tostring(kind))
  ngx.log(ngx.INFO, "scale: ", msg)
  return reply(route, 503, { error = tostring(msg), kind = kind }, deadline)
end

-- The statements; each function gets a checked-out connection.
local function item_by_id(conn, id)
  local rows, msg, err = conn:query(
    "SELECT id, sku, name, category, price, stock FROM items WHERE id = $1", id)
  if not rows then return nil, msg, err end
  return rows[1] or {}
end

local function list_category(conn, category)
  local rows, msg, err = conn:query(
    "SELECT id, name, price FROM items WHERE category = $1 ORDER BY id LIMIT 20", category)
  if not rows then return nil, msg, err end
  return { n = #rows, items = rows }
end

local function place_order(conn, item)
  local rows, msg, err = conn:query(
    "INSERT INTO orders (customer_id, item_id, qty) VALUES ($1, $2, 1) RETURNING id",
    item % 2000 + 1, item)
  if not rows then return nil, msg, err end
  local updated, umsg, uerr = conn:query("UPDATE items SET stock = stock - 1 WHERE id = $1", item)
  if not updated then return nil, umsg, uerr end
  return { order = rows[1].id }
end

function M.item(id)
  return answer("read", M.deadline.read, M.engine:read(item_by_id, tonumber(id)))
end

function M.items(category)
  return answer("read", M.deadline.read, M.engine:read(list_category, tonumber(category)))
end

function M.order(item)
  return answer("write", M.deadline.write, M.engine:transaction(place_order, tonumber(item)))
end

-- ---- numbers for run.sh ------------------------------------------------------

-- The instance's rows for one pool (every worker), with the histograms' raw
-- buckets kept: run.sh takes the wait p95 of one level from the difference
-- of two snapshots.  With ?reset_max=1 the workers' slowest-answer keys are
-- cleared after they are read: run.sh asks so at a phase's start, when the
-- previous phase's requests have all ended, so a phase's max is its own.
function M.stats()
  local engine = M.engine
  local out = { pools = {}, counts = {}, deadline = M.deadline, options = M.options,
                budget = { writes = M.budget_writes and M.budget_writes.sentence,
                           reads = M.budget_reads and M.budget_reads.sentence } }
  out.pools.primary = engine:stats()
  -- Each replica pool, for the whole instance (lua/dbpool/ngx.lua publishes
  -- every pool of the registry, replicas included).
  for i, pool in ipairs(engine.replicas or {}) do
    out.pools["replica" .. i] = require("dbpool.ngx").instance_rows(pool, true) or pool:stats()
  end
  out.bounds = require("dbpool.core").hist_bounds()   -- the buckets' upper bounds (s)
  out.workers = M.workers
  out.latency = { step = LAT_STEP, top = LAT_TOP }   -- the app's histogram (record above)
  for _, key in ipairs(counts:get_keys(0)) do out.counts[key] = counts:get(key) end
  if ngx.var.arg_reset_max == "1" then
    for _, key in ipairs(counts:get_keys(0)) do
      if key:match("^max_ms:") then counts:delete(key) end
    end
  end
  ngx.header.content_type = "application/json"
  ngx.say(json.encode(out))
end

function M.metrics()
  ngx.header.content_type = "text/plain; version=0.0.4"
  ngx.print(dbpool.metrics())
end

return M
