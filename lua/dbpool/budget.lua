-- Connection budget and pool sizing advice.
local policy = require "dbpool.policy"

local M = {}

-- What an engine may open: its stats().capacity, math.huge when unbounded.
-- An options table (a budget planned before any engine exists) is counted
-- by the same C function.
local function capacity(e)
  if type(e) == "table" and e.pool ~= nil then return e.pool:stats().capacity end
  return policy.capacity(e)
end


-- Reads the limits from a live server through an engine: max_connections,
-- superuser_reserved_connections, and this role's and database's own limits.
local function read_live(engine)
  local rows, msg, err = engine:query([[
    SELECT current_setting('max_connections')::int AS max_connections,
           current_setting('superuser_reserved_connections')::int AS superuser_reserved,
           (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user) AS role_limit,
           (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS database_limit]])
  if not rows then return nil, msg, err end
  return rows[1]
end

-- Reads PgBouncer's limits through an engine on its admin console (database
-- "pgbouncer"), which speaks only the simple query protocol: SHOW CONFIG's
-- max_client_conn (clients PgBouncer accepts: what our pools count against)
-- and max_db_connections (server connections per database; 0 = no limit).
local function read_pgbouncer(engine)
  local conn, msg, err = engine:connect()
  if not conn then return nil, msg, err end
  local rows, qmsg, qerr = conn:exec("SHOW CONFIG")
  conn:close()
  if not rows then return nil, qmsg, qerr end
  local config = {}
  for _, row in ipairs(rows) do config[row.key] = tonumber(row.value) end
  return config
end

-- dbpool.budget{ instances=, engines=, reserve=, max_connections=,
--   superuser_reserved_connections=, live= } -> result | nil, msg, err
--
-- needed = instances x (sum of every engine's pool_size + max_overflow) + reserve
-- available = max_connections - superuser_reserved_connections, further capped
-- by the role's and the database's connection limits when read live.
-- engines defaults to every engine this Lua state knows; live may be an
-- engine to read the server's limits from (or true: the first engine).
-- result.size_limits gives each pool_size = "auto" engine the most its
-- size may be per process for the fleet to fit; apply = true also sets them
-- on the engines (pool:size_limit), so sizing never goes above them.
-- pgbouncer may be an engine on PgBouncer's admin console: the pools then
-- count against its max_client_conn, and its max_db_connections must fit
-- the server's limits.
local function is_engine(x)
  return type(x) == "table" and x.pool ~= nil and type(x.query) == "function"
end

-- pool_size = "auto": the most each auto engine's size may be in one
-- process for the fleet to fit: an instance's share of what is available,
-- less every other engine's capacity and this one's max_overflow (which
-- stays on top of the size), at least 1.  Keyed by engine name; nothing
-- for fixed engines or when a capacity is unbounded.
local function size_limits(engines, instances, per_instance, available)
  local limits = {}
  if per_instance == math.huge then return limits end
  for key, e in pairs(engines) do
    local stats = is_engine(e) and e.pool:stats()
    if stats and stats.autosize then
      local others = per_instance - stats.capacity
      local n = math.floor(available / instances - others - stats.max_overflow)
      limits[tostring(e.name or key)] = math.max(1, math.min(n, stats.autosize.max))
    end
  end
  return limits
end

-- Every argument is checked before a connection is taken.
local function check_spec(spec)
  local function bad(key, must, got)
    error(("dbpool.budget: '%s' must be %s, got %s"):format(key, must, got), 0)
  end
  if type(spec) ~= "table" then bad("spec", "a table", type(spec)) end
  for _, key in ipairs { "instances", "reserve", "max_connections", "superuser_reserved_connections" } do
    local v = spec[key]
    if v ~= nil and (type(v) ~= "number" or v ~= v or v < 0) then
      bad(key, "a number >= 0", type(v) == "number" and tostring(v) or type(v))
    end
  end
  if spec.engines ~= nil and type(spec.engines) ~= "table" then
    bad("engines", "a table of engines or options", type(spec.engines))
  end
  if spec.live ~= nil and spec.live ~= true and not is_engine(spec.live) then
    bad("live", "true or an engine", type(spec.live))
  end
  if spec.apply ~= nil and type(spec.apply) ~= "boolean" then
    bad("apply", "a boolean", type(spec.apply))
  end
  if spec.pgbouncer ~= nil and not is_engine(spec.pgbouncer) then
    bad("pgbouncer", "an engine on PgBouncer's admin console", type(spec.pgbouncer))
  end
end

function M.budget(dbpool, spec)
  spec = spec or {}
  check_spec(spec)
  local instances = spec.instances or 1
  local reserve = spec.reserve or 0
  if instances < 1 then
    error("dbpool.budget: 'instances' must be a number >= 1, got " .. tostring(instances), 0)
  end
  local engines = spec.engines or dbpool.engines()
  local per_instance, names = 0, {}
  for key, e in pairs(engines) do
    per_instance = per_instance + capacity(e)
    names[#names + 1] = tostring(e.name or key)
  end
  table.sort(names)

  local result = {
    instances = instances, per_instance = per_instance, reserve = reserve,
    needed = instances * per_instance + reserve, engines = names,
    max_connections = spec.max_connections,
    superuser_reserved_connections = spec.superuser_reserved_connections or 3,
  }
  local live = spec.live
  if live == true then live = engines[next(engines)] end
  if live then
    local limits, msg, err = read_live(live)
    if not limits then return nil, msg, err end
    result.max_connections = limits.max_connections
    result.superuser_reserved_connections = limits.superuser_reserved
    if limits.role_limit >= 0 then result.role_limit = limits.role_limit end
    if limits.database_limit >= 0 then result.database_limit = limits.database_limit end
  end
  if type(result.max_connections) ~= "number" then
    error("dbpool.budget: give max_connections, or live = an engine to read it from", 0)
  end
  local available = result.max_connections - result.superuser_reserved_connections
  local limited_by = "max_connections - superuser_reserved_connections"
  if result.role_limit and result.role_limit < available then
    available, limited_by = result.role_limit, "the role's connection limit"
  end
  if result.database_limit and result.database_limit < available then
    available, limited_by = result.database_limit, "the database's connection limit"
  end
  if spec.pgbouncer then
    local bouncer, msg, err = read_pgbouncer(spec.pgbouncer)
    if not bouncer then return nil, msg, err end
    result.max_client_conn = bouncer.max_client_conn
    result.max_db_connections = bouncer.max_db_connections
    -- PgBouncer multiplexes: the server sees at most max_db_connections.
    local server = available
    result.server_fits = bouncer.max_db_connections ~= 0 and bouncer.max_db_connections <= server
    available, limited_by = bouncer.max_client_conn,
      ("PgBouncer's max_client_conn; it opens at most %s server connections, %s the %d the server allows")
      :format(bouncer.max_db_connections == 0 and "unlimited" or tostring(bouncer.max_db_connections),
              result.server_fits and "within" or "NOT within", server)
  end
  result.available = available
  result.fits = result.needed <= available
  result.size_limits = size_limits(engines, instances, per_instance, available - reserve)
  if spec.apply then
    for key, e in pairs(engines) do
      local n = result.size_limits[tostring(e.name or key)]
      if n and is_engine(e) then e.pool:size_limit(n) end
    end
  end
  if per_instance == math.huge then
    result.sentence = ("Does not fit: an engine has unbounded capacity (pool_size 0 or max_overflow -1), so %d instance(s) could open more than the %d connections available (%s).")
      :format(instances, available, limited_by)
  else
    result.sentence = ("%s: %d instance(s) x %d connections (%s) + %d reserve = %d, against %d available (%s).")
      :format(result.fits and "Fits" or "Does not fit", instances, per_instance,
              table.concat(names, ", "), reserve, result.needed, available, limited_by)
  end
  return result
end

-- dbpool.suggest_pool_size{ cpus=, mem_gb=, spindles= } -> two estimates,
-- each with its reasoning in a sentence.
function M.suggest_pool_size(spec)
  spec = spec or {}
  local cpus, mem = spec.cpus, spec.mem_gb
  if type(cpus) ~= "number" or cpus < 1 then
    error("dbpool.suggest_pool_size: 'cpus' must be a number >= 1, got " .. tostring(cpus), 0)
  end
  if type(mem) ~= "number" or mem <= 0 then
    error("dbpool.suggest_pool_size: 'mem_gb' must be a number > 0, got " .. tostring(mem), 0)
  end
  local spindles = spec.spindles or 0
  local raw = math.min(cpus * 3, mem * 2)
  local adaptive = math.floor(math.max(5, math.min(50, raw)))
  local classic = math.floor(cpus * 2 + spindles)
  return {
    adaptive = {
      pool_size = adaptive,
      reason = ("min(cpus x 3 = %g, mem_gb x 2 = %g) = %g, bounded to 5..50: %d. CPU keeps each connection busy, memory bounds what the server can give every backend.")
        :format(cpus * 3, mem * 2, raw, adaptive),
    },
    classic = {
      pool_size = classic,
      reason = ("cores x 2 + spindles = %g x 2 + %g = %d: the PostgreSQL wiki's starting point, enough to keep every core busy while others wait on I/O.")
        :format(cpus, spindles, classic),
    },
  }
end

return M
