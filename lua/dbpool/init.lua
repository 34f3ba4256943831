-- dbpool: PostgreSQL connection pools for Lua 5.4 and LuaJIT.
--
-- Pools, connections and every counter live in the C core (dbpool.core);
-- this module shapes options and adds the conveniences (with, transaction,
-- query) in Lua.  It holds no pool state: an Engine is a name, a handle on
-- the process-wide pool of that name, and the options it was made with.
-- Every module dbpool uses is loaded here, none later: under nginx the app
-- loads dbpool in init_by_lua, where the master (root, usually) can read
-- it, and its workers (an unprivileged user) only share what it loaded.
local core = require "dbpool.core"
local policy = require "dbpool.policy"
local health = require "dbpool.health"
local advise = require "dbpool.advise"
local configure = require "dbpool.configure"
local budget = require "dbpool.budget"
local metrics = require "dbpool.metrics"

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local dbpool = {
  null = core.null,        -- SQL NULL: the NULL light userdata (== cjson.null, ngx.null)
  Error = core.Error,      -- metatable of runtime errors
  bytea = core.bytea,      -- dbpool.bytea(s): a parameter sent as bytea, byte for byte
}

-- Inside nginx, queries and slot waits yield instead of blocking the worker
-- (lua/dbpool/ngx.lua); elsewhere a checkout is the blocking pool:connect.
local in_nginx = rawget(_G, "ngx") ~= nil and type(ngx.sleep) == "function"
local checkout, ngx_path
local warming, start_warming = false, nil   -- min_idle under nginx: see start_warming
if in_nginx then
  ngx_path = require "dbpool.ngx"
  local connect = ngx_path.connect
  checkout = function(pool)
    if not warming then start_warming() end
    return connect(pool)
  end
else
  checkout = function(pool) return pool:connect() end
end

-- Where pool events, echoed statements and warnings go: a settable function
-- (message, level), level one of "info", "warn", "error".  Under OpenResty
-- it is ngx.log (nginx's error log); elsewhere stderr.
local ngx_levels = rawget(_G, "ngx") and ngx.log and
  { info = ngx.INFO, warn = ngx.WARN, error = ngx.ERR } or nil
function dbpool.log(message, level)
  if ngx_levels then
    ngx.log(ngx_levels[level] or ngx.INFO, "dbpool: ", message)
  else
    io.stderr:write("dbpool [", level or "info", "] ", message, "\n")
  end
end

-- nil, msg, err: a runtime failure as every dbpool function returns it
-- (and luv and the lua-resty libraries): msg a string, err a dbpool.Error.
local function fail(engine, kind, message)
  return nil, message, setmetatable({ kind = kind, message = message, engine = engine }, core.Error)
end

-- Programming mistakes raise at the caller of the public function (level 3
-- from here), before any connection is taken.
local function check_callable(fn, method)
  local t = type(fn)
  if t == "function" then return end
  local mt = t == "table" and getmetatable(fn)
  if mt and mt.__call then return end
  error(("bad argument #1 to '%s' (function expected, got %s)"):format(method, t), 3)
end
local function check_sql(sql, method)
  if type(sql) ~= "string" then
    error(("bad argument #1 to '%s' (string expected, got %s)"):format(method, type(sql)), 3)
  end
  if sql:find("\0", 1, true) then
    error(("bad argument #1 to '%s' (string contains a zero byte)"):format(method), 3)
  end
end

-- Under nginx the statement's parameters are read only after the checkout
-- (the yielding path): look at them first, as the C path does.
local function check_param(v, i, method)
  local t = type(v)
  if t == "nil" or t == "boolean" or t == "number" or v == core.null or
     (t == "table" and getmetatable(v) == "dbpool.Param") then
    return
  end
  if t == "string" then
    if not v:find("\0", 1, true) then return end
    error(("bad argument to '%s' (parameter $%d contains a zero byte, which text cannot hold: "
      .. "use dbpool.bytea(s) for binary data)"):format(method, i), 4)
  end
  error(("bad argument to '%s' (parameter $%d must be a string, number, boolean, nil, "
    .. "dbpool.null or dbpool.bytea(s), got %s)"):format(method, i, t), 4)
end
local function check_params(method, ...)
  for i = 1, select("#", ...) do check_param((select(i, ...)), i, method) end
end
local function check_params_table(params, method)
  if type(params) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)"):format(method, type(params)), 3)
  end
  for i = 1, params.n or #params do check_param(params[i], i, method) end
end

-- ===== Engine ===============================================================

local Engine = {}
Engine.__index = Engine

local engines = {}         -- this Lua state's Engine objects, by name

-- Each replica is a pool of its own, named "<name>/replica<i>" (so it shows
-- in stats and metrics as an engine), with the engine's options but its own
-- DSN and no role or policy of the primary's.
local function open_replicas(name, options)
  if not options then             -- dbpool.get: find what another state opened
    local pools = {}
    while true do
      local pool = core.find(name .. "/replica" .. (#pools + 1))
      if not pool then break end
      pools[#pools + 1] = pool
    end
    return #pools > 0 and pools or nil
  end
  local list = options.replicas
  if type(list) ~= "table" or #list == 0 then return nil end
  local pools = {}
  for i, dsn in ipairs(list) do
    local o = {}
    for k, v in pairs(options) do o[k] = v end
    o.name, o.dsn, o.replicas, o.role, o.policy = options.name .. "/replica" .. i, dsn, nil, nil, nil
    pools[i] = core.open(o)
  end
  return pools
end

local function wrap(name, pool, options)
  local engine = setmetatable({ name = name, pool = pool, options = options, rr = 0 }, Engine)
  engine.replicas = open_replicas(name, options)
  engines[name] = engine
  return engine
end

-- Under nginx, each worker keeps min_idle of the engines it inherited from
-- the master from a timer (lua/dbpool/ngx.lua), started by its first
-- checkout, or earlier by dbpool.init_worker() in init_worker_by_lua.
function start_warming()
  if warming or not in_nginx or ngx_path.phase() == "init" then return end
  warming = true
  ngx_path.start_publishing()
  for _, engine in pairs(engines) do
    if engine.options then ngx_path.keep_warm(engine.pool, engine.options.min_idle) end
  end
end

-- dbpool.init_worker(): under nginx, in init_worker_by_lua, starts the
-- min_idle timers of the engines made in init_by_lua, and the one that
-- publishes this worker's numbers to the instance, at once; elsewhere it
-- does nothing.
dbpool.init_worker = start_warming

-- Under nginx: in the master (init_by_lua, also again on `nginx -s reload`)
-- an engine whose name exists with other options is replaced, so that the
-- next generation of workers runs with what the new configuration says.
local function open_in_nginx(options)
  local ok, pool, created = pcall(core.open, options, false)
  if not ok and ngx_path.phase() == "init" and
     tostring(pool):find("already exists with different options", 1, true) then
    dbpool.remove(options.name)
    ok, pool, created = pcall(core.open, options, false)
  end
  if ok then
    ngx_path.share(pool)
    ngx_path.keep_warm(pool, options.min_idle)                  -- not in the master
  end
  return ok, pool, created
end

-- dbpool.engine(options) -> Engine.  Raises on a bad option (naming it, what
-- it must be, and what it got) or when the name is already registered in
-- this process with other options.  Opens no connection unless min_idle;
-- under nginx none at all: workers open min_idle from a timer.
function dbpool.engine(options)
  if type(options) ~= "table" then
    error("dbpool.engine expects a table of options, got " .. type(options), 2)
  end
  if options.policy ~= nil then                      -- refuse to build, listing every violation
    local ok, refusal = pcall(policy.refusal, options, options.policy)
    if not ok or refusal then error(refusal, 2) end
  end
  local ok, pool, created, warmup_err
  if in_nginx then
    ok, pool, created = open_in_nginx(options)
  else
    ok, pool, created, warmup_err = pcall(core.open, options)
  end
  if not ok then error(pool, 2) end
  if warmup_err then
    dbpool.log(("engine %s: min_idle pre-warming failed: %s"):format(options.name,
      tostring(warmup_err)), "warn")
  end
  local known = engines[options.name]
  if known and known.pool == pool and not created then return known end
  return wrap(options.name, pool, options)
end

-- dbpool.get(name) -> the Engine of that name, also when another Lua state
-- or thread of this process created it; nil when there is none.
function dbpool.get(name)
  local engine = engines[name]
  if engine then return engine end
  local pool = core.find(name)
  return pool and wrap(name, pool, nil) or nil
end

-- An Engine after dbpool.remove: every use raises.
local Removed = {}
function Removed.__index(engine, key)
  error(("dbpool: engine '%s' was removed (dbpool.remove): it cannot %s any more; "
    .. "make it again with dbpool.engine"):format(rawget(engine, "name"), tostring(key)), 2)
end
Removed.__tostring = function(engine) return ("dbpool.Engine(%s, removed)"):format(rawget(engine, "name")) end

-- dbpool.remove(name) -> true | false (no such name).  Disposes the engine
-- (idle connections close now, checked-out ones on return) and takes its
-- name, and its replicas', out of the process's registry: dbpool.engine may
-- make it again, with other options.  This state's Engine object for it
-- then raises on use.
function dbpool.remove(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'remove' (string expected, got " .. type(name) .. ")", 2)
  end
  local engine = engines[name]
  local i = 1
  while core.remove(name .. "/replica" .. i) do i = i + 1 end
  local removed = core.remove(name)
  if ngx_path then ngx_path.forget(name) end
  if engine then
    engines[name] = nil
    for k in pairs(engine) do if k ~= "name" then engine[k] = nil end end
    setmetatable(engine, Removed)
  end
  return removed
end

-- dbpool.engines() -> { name = Engine } for the engines this state knows.
function dbpool.engines()
  local copy = {}
  for name, engine in pairs(engines) do copy[name] = engine end
  return copy
end

-- engine:connect() -> Conn | nil, msg, err.  Blocks up to pool_timeout.
-- Outside nginx that is core.engine_connect, pool:connect in one C call.
if in_nginx then
  function Engine:connect()
    return checkout(self.pool)
  end
else
  Engine.connect = core.engine_connect
end

local function finish(conn, ok, ...)
  conn:close()
  if not ok then error((...), 0) end
  return ...
end

-- engine:with(fn, ...) -> fn's results.  Checks out, calls fn(conn, ...),
-- and always returns the connection, also when fn raises (the error is
-- raised again).  nil, msg, err when no connection could be had; raises at
-- once, before any checkout, when fn is not callable.
function Engine:with(fn, ...)
  check_callable(fn, "with")
  local conn, msg, err = checkout(self.pool)
  if not conn then return nil, msg, err end
  return finish(conn, pcall(fn, conn, ...))
end

-- A connection for read-only work: the next replica in turn (round robin)
-- whose circuit breaker is not open (half-open: this read is its probe) and
-- that gives a connection; else the primary, counted in read_fallbacks.  Replicas never serve Engine:connect,
-- with, transaction or query: writes never reach them.
local function read_connection(self)
  local replicas = self.replicas
  if replicas then
    local n = #replicas
    for _ = 1, n do
      self.rr = self.rr % n + 1
      local pool = replicas[self.rr]
      if pool:breaker() ~= "open" then
        local conn = checkout(pool)
        if conn then return conn end
      end
    end
    self.pool:note_read_fallback()
  end
  return checkout(self.pool)
end

-- engine:read(fn, ...) -> fn's results: like with, on a replica when one is
-- healthy (see read_connection), else on the primary.
function Engine:read(fn, ...)
  check_callable(fn, "read")
  local conn, msg, err = read_connection(self)
  if not conn then return nil, msg, err end
  return finish(conn, pcall(fn, conn, ...))
end

-- One statement on a checked-out connection, which is always returned;
-- an error raised by the query (bad arguments) is raised at the caller.
local function query_once(conn, msg, err, sql, ...)
  if not conn then return nil, msg, err end
  local ok, rows, query_msg, query_err = pcall(conn.query, conn, sql, ...)
  conn:close()
  if not ok then error(rows, 3) end
  return rows, query_msg, query_err
end

-- engine:read_query(sql, ...) -> rows | nil, msg, err: one read on a replica.
function Engine:read_query(sql, ...)
  check_sql(sql, "read_query")
  check_params("read_query", ...)
  local conn, msg, err = read_connection(self)
  local rows, query_msg, query_err = query_once(conn, msg, err, sql, ...)   -- not a tail call: level 3 is our caller
  return rows, query_msg, query_err
end

-- engine:transaction(fn, ...) -> fn's results.  BEGIN, fn(conn, ...),
-- COMMIT.  ROLLBACK instead when fn raises (raised again), when fn returns
-- nil, msg[, err] (returned as they are), or when a statement inside failed
-- and left the transaction aborted (nil, msg, err of kind "query": COMMIT
-- would silently roll back).
function Engine:transaction(fn, ...)
  check_callable(fn, "transaction")
  local conn, msg, err = checkout(self.pool)
  if not conn then return nil, msg, err end
  local began, begin_msg, begin_err = conn:exec("BEGIN")
  if not began then
    conn:close()
    return nil, begin_msg, begin_err
  end
  local r = pack(pcall(fn, conn, ...))
  if not r[1] or (r[2] == nil and r.n >= 3) or conn:transaction_status() == "inerror" then
    conn:exec("ROLLBACK")
    conn:close()
    if not r[1] then error(r[2], 0) end
    if r[2] == nil and r.n >= 3 then return unpack(r, 2, r.n) end
    return fail(self.name, "query", "transaction aborted by an earlier error; rolled back")
  end
  local done, commit_msg, commit_err = conn:exec("COMMIT")
  conn:close()
  if not done then return nil, commit_msg, commit_err end
  return unpack(r, 2, r.n)
end

-- engine:query(sql, ...) -> rows | nil, msg, err: checkout, one query, return.
-- Outside nginx that is core.engine_query, all in C with no Conn made
-- (pool:query); inside, the checkout and the statement must yield.
if in_nginx then
  function Engine:query(sql, ...)
    check_sql(sql, "query")
    check_params("query", ...)
    local conn, msg, err = checkout(self.pool)
    local rows, query_msg, query_err = query_once(conn, msg, err, sql, ...)   -- not a tail call: level 3 is our caller
    return rows, query_msg, query_err
  end
  function Engine:query_params(sql, params)
    check_sql(sql, "query_params")
    check_params_table(params, "query_params")
    local conn, msg, err = checkout(self.pool)
    if not conn then return nil, msg, err end
    local ok, rows, query_msg, query_err = pcall(conn.query_params, conn, sql, params)
    conn:close()
    if not ok then error(rows, 2) end
    return rows, query_msg, query_err
  end
else
  Engine.query = core.engine_query
  Engine.query_params = core.engine_query_params
end
-- engine:query_params(sql, params) -> rows | nil, msg, err: engine:query
-- with the parameters in one array (params.n counts trailing nils), up to
-- PostgreSQL's 65,535 on every Lua.

-- engine:stats() -> counters, gauges and the wait/hold/connect histograms
-- ({count, sum, mean, p50, p95, p99, buckets}); see README.  capacity is
-- pool_size + max_overflow, math.huge when unbounded.
-- Under nginx, in a worker, for an engine made in the master: every worker
-- of the instance together (.processes of them live), as dbpool.metrics().
function Engine:stats()
  return ngx_path and ngx_path.instance_rows(self.pool, true) or self.pool:stats()
end

-- engine:health([thresholds]) -> { status = "healthy"|"degraded"|"down", reasons = {...} }
function Engine:health(thresholds) return health.check(self, thresholds) end

-- engine:advise() -> recommended pool_size and max_overflow with the reasoning
function Engine:advise() return advise.advise(self) end

function Engine:dispose()
  for _, pool in ipairs(self.replicas or {}) do pool:dispose() end
  return self.pool:dispose()
end

function Engine:__tostring()
  return ("dbpool.Engine(%s, %s)"):format(self.name, self.pool:dsn())
end

-- ===== Policies, markets, budgets ==========================================

dbpool.policies = policy.policies
dbpool.health_defaults = health.defaults

-- dbpool.metrics() -> Prometheus text for every engine of the process
-- (under nginx one series per worker of the instance, labelled worker)
function dbpool.metrics()
  return metrics(ngx_path and ngx_path.instance_rows)
end

-- Calls fn and raises its error at the caller of the dbpool function.
local function blame_caller(ok, ...)
  if not ok then error((...), 3) end
  return ...
end

-- dbpool.check(options_or_engines, policy) -> ok, violations
function dbpool.check(x, p)
  return blame_caller(pcall(policy.check, x, p))
end

-- dbpool.configure{ env, defaults, environments, markets } -> { name = Engine }, env
function dbpool.configure(spec)
  return blame_caller(pcall(configure, dbpool, spec))
end

-- dbpool.budget{...} -> result | nil, msg, err (see lua/dbpool/budget.lua)
function dbpool.budget(spec)
  return blame_caller(pcall(budget.budget, dbpool, spec))
end

-- dbpool.suggest_pool_size{ cpus=, mem_gb=, spindles= } -> two estimates with reasons
function dbpool.suggest_pool_size(spec)
  return blame_caller(pcall(budget.suggest_pool_size, spec))
end

dbpool.Engine = Engine
return dbpool
