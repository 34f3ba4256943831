-- Shared by the specs: the throwaway server's DSNs (scripts/with-pg.sh) and
-- unique engine names, since engines live for the whole process.
local dbpool = require "dbpool"

local helper = {}

helper.dsn = assert(os.getenv("DBPOOL_TEST_DSN"),
  "DBPOOL_TEST_DSN is not set: run the specs through `make test` (scripts/with-pg.sh)")
helper.app_dsn = os.getenv("DBPOOL_APP_DSN")
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
  return dbpool.engine(o)
end

local admin
-- The server's own view, through a separate engine.
function helper.admin()
  -- pre-ping: recovery specs stop and restart the server under it.
  admin = admin or dbpool.engine { name = "spec_admin", dsn = helper.dsn, pool_size = 2,
                                  max_overflow = 2, application_name = "spec_admin",
                                  pool_pre_ping = true }
  return admin
end

-- Backends the server sees for an application_name.
function helper.backends(app)
  local rows = assert(helper.admin():query(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", app))
  return tonumber(rows[1].n)
end

-- Backends of app once the count settles at want (a closed connection's
-- backend leaves pg_stat_activity a moment after the client hangs up).
function helper.settled_backends(app, want)
  local sys = require "system"
  local deadline = sys.monotime() + 3
  local n = helper.backends(app)
  while n ~= want and sys.monotime() < deadline do
    sys.sleep(0.02)
    n = helper.backends(app)
  end
  return n
end

-- The last statement a backend ran, as pg_stat_activity shows it.
function helper.last_query(pid)
  local rows = assert(helper.admin():query(
    "SELECT query FROM pg_stat_activity WHERE pid = $1", pid))
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
