-- Shared by the specs: the throwaway server's DSNs (scripts/with-pg.sh) and
-- unique engine names, since engines live for the whole process.
local dbpool = require "dbpool"

local helper = {}

-- The server itself, for the admin engine and anything that must see it.
helper.server_dsn = assert(os.getenv("DBPOOL_TEST_DSN"),
  "DBPOOL_TEST_DSN is not set: run the specs through `make test` (scripts/with-pg.sh)")
helper.dsn = helper.server_dsn

-- DBPOOL_SPEC_VIA=pgbouncer runs the suite through the cluster's PgBouncer
-- (transaction pooling, scripts/with-cluster.sh): every engine of
-- helper.engine gets pgbouncer = true and a PgBouncer database of its own (an
-- alias of postgres), so that "the server" of a spec (what it counts, kills,
-- stops and restarts) is PgBouncer, the server dbpool talks to. The admin
-- engine still talks to PostgreSQL.
helper.via_pgbouncer = os.getenv("DBPOOL_SPEC_VIA") == "pgbouncer"
local pgb_port = os.getenv("DBPOOL_PGB_PORT")
local function pgb_dsn(database)
  return ("postgresql://postgres@127.0.0.1:%s/%s"):format(pgb_port, database)
end
if helper.via_pgbouncer then
  assert(pgb_port, "DBPOOL_SPEC_VIA=pgbouncer needs scripts/with-cluster.sh")
  helper.dsn = pgb_dsn("postgres")
end
-- The app role's DSN, with a password (specs check that none leaks).
helper.app_dsn = helper.via_pgbouncer and os.getenv("DBPOOL_PGB_DSN") or os.getenv("DBPOOL_APP_DSN")
helper.app_password = os.getenv("DBPOOL_APP_PASSWORD")   -- new for every cluster
helper.port = tonumber(os.getenv("DBPOOL_PG_PORT"))

-- Timing allowances are multiplied by this: the suite runs once more under
-- valgrind, where everything is many times slower (scripts/run-suites.sh).
helper.time_scale = tonumber(os.getenv("DBPOOL_TIME_SCALE")) or 1

local counter = 0
-- A fresh registry name (and application_name, to find its backends).
function helper.name(prefix)
  counter = counter + 1
  return ("%s_%d_%d"):format(prefix or "t", counter, math.random(1, 1e6))
end

-- An engine with small, fast defaults; opts override.
function helper.engine(opts)
  opts = opts or {}
  local o = { dsn = helper.dsn, pool_size = 2, max_overflow = 1, pool_timeout = 2 }
  for k, v in pairs(opts) do o[k] = v end
  o.name = o.name or helper.name("e")
  if o.application_name == nil then o.application_name = o.name end
  if helper.via_pgbouncer and o.pgbouncer == nil then
    if o.dsn == helper.dsn then o.dsn, o.pgbouncer = pgb_dsn(o.name), true
    elseif o.dsn == helper.app_dsn then o.pgbouncer = true end
  end
  return dbpool.engine(o)
end

-- The backend pids of n connections of e, checked out at once and given
-- back (in checkout order).
function helper.pids_of(e, n)
  local held, pids = {}, {}
  for i = 1, n do
    held[i] = assert(e:connect())
    pids[i] = held[i]:backend_pid()
  end
  for _, c in ipairs(held) do c:close() end
  return pids
end

local admin
-- The server's own view, through a separate engine.
function helper.admin()
  -- pre-ping: recovery specs stop and restart the server under it.
  admin = admin or dbpool.engine { name = "spec_admin", dsn = helper.server_dsn, pool_size = 2,
                                  max_overflow = 2, application_name = "spec_admin",
                                  pool_pre_ping = true }
  return admin
end

local console
-- PgBouncer's admin console (simple query protocol only: conn:exec).
local function console_exec(sql)
  console = console or dbpool.engine { name = "spec_console", dsn = pgb_dsn("pgbouncer"),
                                      pgbouncer = true, pool_size = 1, max_overflow = 0,
                                      pool_pre_ping = true }   -- outlives PgBouncer restarts
  local c = assert(console:connect())
  local rows, _, err = c:exec(sql)
  c:close()
  return assert(rows, err)
end

-- Connections the server sees for an application_name: backends in
-- pg_stat_activity, or PgBouncer's clients through it.
function helper.backends(app)
  if helper.via_pgbouncer then
    local n = 0
    for _, client in ipairs(console_exec("SHOW CLIENTS")) do
      if client.application_name == app then n = n + 1 end
    end
    return n
  end
  local rows = assert(helper.admin():query(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", app))
  return tonumber(rows[1].n)
end

-- Backends of app once the count settles at want (a closed connection's
-- backend leaves pg_stat_activity a moment after the client hangs up).
function helper.settled_backends(app, want)
  local sys = require "system"
  local deadline = sys.monotime() + 10 * helper.time_scale   -- returns as soon as it settles
  local n = helper.backends(app)
  while n ~= want and sys.monotime() < deadline do
    sys.sleep(0.02)
    n = helper.backends(app)
  end
  return n
end

-- The last statement PostgreSQL ran for an application_name (PgBouncer sets
-- the client's application_name on the server connection it lends).
function helper.last_query(app)
  local rows = assert(helper.admin():query([[SELECT query FROM pg_stat_activity
    WHERE application_name = $1 ORDER BY state_change DESC LIMIT 1]], app))
  return rows[1] and rows[1].query
end

-- Calls fn with dbpool.log replaced; returns the { message, level } pairs
-- it received.
function helper.capture_log(fn)
  local seen, saved = {}, dbpool.log
  dbpool.log = function(message, level) seen[#seen + 1] = { message = message, level = level } end
  local ok, err = pcall(fn)
  dbpool.log = saved
  if not ok then error(err, 0) end
  return seen
end

-- Runs scripts/pg-ctl.sh (stop, start, restart) on the throwaway server.
function helper.pg_ctl(action)
  local root = assert(os.getenv("DBPOOL_ROOT") or ".")
  assert(os.execute(root .. "/scripts/pg-ctl.sh " .. action), "pg-ctl.sh " .. action .. " failed")
end

-- Stops, starts or restarts the server the engines talk to: PostgreSQL, or
-- PgBouncer through it (scripts/pgbouncer-ctl.sh).
function helper.server_ctl(action)
  if not helper.via_pgbouncer then return helper.pg_ctl(action) end
  local root = assert(os.getenv("DBPOOL_ROOT") or ".")
  assert(os.execute(root .. "/scripts/pgbouncer-ctl.sh " .. action),
    "pgbouncer-ctl.sh " .. action .. " failed")
end

-- The pid of the process that accepts the engines' connections.
function helper.server_pid()
  local file = helper.via_pgbouncer and assert(os.getenv("DBPOOL_PGB_DIR")) .. "/pgbouncer.pid"
    or assert(os.getenv("DBPOOL_PG_DATA")) .. "/postmaster.pid"
  return assert(assert(io.open(file)):read("*l"))
end

-- Ends connections of engine e under it, as a dying server would. On
-- PostgreSQL: pg_terminate_backend of the given backend pids. Through
-- PgBouncer: KILL of e's own database there, which ends all of e's connections
-- (PgBouncer 1.18 cannot end one client), then RESUME so new ones get in.
function helper.disconnect(e, pids)
  if not helper.via_pgbouncer then return helper.terminate(pids) end
  local alias = e.name
  console_exec("KILL " .. alias)
  console_exec("RESUME " .. alias)
  local sys = require "system"
  local deadline = sys.monotime() + 5
  repeat
    local left = 0
    for _, client in ipairs(console_exec("SHOW CLIENTS")) do
      if client.database == alias then left = left + 1 end
    end
    if left == 0 then return end
    sys.sleep(0.01)
  until sys.monotime() > deadline
  error("PgBouncer still has clients on " .. alias)
end

-- What a query on a connection ended by helper.disconnect fails with.
helper.disconnect_error = helper.via_pgbouncer
  and { sqlstate = "08P01", severity = "FATAL", message = "database removed" }
  or { sqlstate = "57P01", severity = "FATAL",
       message = "terminating connection due to administrator command" }

-- What a login with a wrong password fails with.
helper.login_failed = helper.via_pgbouncer and "SASL authentication failed"
  or "password authentication failed"

-- Terminates the given backends and waits until the server no longer lists
-- them, so that a spec sees them gone for certain.
function helper.terminate(pids)
  local sys = require "system"
  for _, pid in ipairs(pids) do
    assert(helper.admin():query("SELECT pg_terminate_backend($1)", pid))
  end
  local deadline = sys.monotime() + 5
  repeat
    local rows = assert(helper.admin():query(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = ANY($1::int[])",
      "{" .. table.concat(pids, ",") .. "}"))
    if tonumber(rows[1].n) == 0 then return end
    sys.sleep(0.01)
  until sys.monotime() > deadline
  error("backends still alive: " .. table.concat(pids, ","))
end

return helper
