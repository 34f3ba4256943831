--- PostgreSQL connection pools for Lua 5.4 and LuaJIT: `require "dbpool"`.
--
-- Pools, connections and every counter live in the C core (dbpool.core);
-- this module shapes options and adds the conveniences (with, transaction,
-- query) in Lua.  It holds no pool state: an Engine is a name, a handle on
-- the process-wide pool of that name, and the options it was made with.
-- Every module dbpool uses is loaded here, none later: under nginx the app
-- loads dbpool in init_by_lua, where the master (root, usually) can read
-- it, and its workers (an unprivileged user) only share what it loaded.
--
-- Errors: a programming mistake (a bad option, a wrong argument) raises,
-- naming what was wrong; a runtime failure returns `nil, msg, err`, `msg` a
-- string and `err` a table with `message`, `kind` ("timeout", "connect",
-- "query", "closed", "circuit_open", "again"), `engine`, and from the server
-- `sqlstate`, `severity`, `detail`, `hint`.
-- @module dbpool
local core = require "dbpool.core"
local policy = require "dbpool.policy"
local health = require "dbpool.health"
local advise = require "dbpool.advise"
local configure = require "dbpool.configure"
local budget = require "dbpool.budget"
local metrics = require "dbpool.metrics"
local types = require "dbpool.types"
require "dbpool.conn"      -- conn:pipeline, conn:stream, conn:copy_from, conn:copy_to
local listen = require "dbpool.listen"

local pack = table.pack or function(...) return { n = select("#", ...), ... } end
local unpack = table.unpack or unpack

local dbpool = {
  --- The version, "MAJOR.MINOR.PATCH".
  _VERSION = "0.1.0",
  --- SQL NULL in rows and parameters: the NULL light userdata (== cjson.null, ngx.null).
  null = core.null,
  --- The metatable of runtime errors (the `err` of `nil, msg, err`).
  Error = core.Error,
  --- A parameter sent as bytea, byte for byte (a plain string is text).
  -- @function bytea
  -- @string s the bytes
  -- @return a parameter for query, query_params and the like
  -- @raise when s is not a string
  bytea = core.bytea,
  --- A parameter sent as a PostgreSQL array: the text literal of a Lua
  -- array, nested tables for more dimensions (`{{1, 2}, {3, 4}}`), elements
  -- numbers, strings, booleans, `dbpool.null`, `dbpool.json(v)`,
  -- `dbpool.bytea(s)`.  Its type is left to the server: cast where the
  -- statement does not fix it (`$1::int[]`).
  -- @function array
  -- @tparam table t a Lua array (keys 1..#t; no holes: `dbpool.null` for NULL)
  -- @return a parameter
  -- @raise naming the element ([2][1]) on a hole, a key that is not 1..#t,
  -- a value of another type, sub-arrays of unequal lengths, more than 6
  -- dimensions; when t is not a table
  array = core.array,
  --- A parameter sent as JSON text, as lua-cjson encodes v; its type is
  -- left to the server (`$1::jsonb` where the statement does not fix it).
  -- @function json
  -- @param v a table, string, number, boolean or `dbpool.null`
  -- @return a parameter
  -- @raise when v is nil, a function or userdata, or lua-cjson cannot
  -- encode it (its message: a function inside, NaN, a sparse array)
  json = core.json,
}

-- Inside nginx, queries and slot waits yield instead of blocking the worker
-- (lua/dbpool/ngx.lua); elsewhere a checkout is the blocking pool:connect.
local in_nginx = rawget(_G, "ngx") ~= nil and type(ngx.sleep) == "function"
local checkout, ngx_path
local warming, start_warming = false, nil   -- min_idle under nginx: see start_warming
if in_nginx then
  ngx_path = require "dbpool.ngx"
  health.try_checkout = ngx_path.try_checkout
  local connect = ngx_path.connect
  checkout = function(pool)
    if not warming then start_warming() end
    return connect(pool)
  end
else
  checkout = function(pool) return pool:connect() end
end

-- Where pool events, echoed statements and warnings go: a settable function
-- (message, level), level one of "debug", "info", "warn", "error".  Under
-- OpenResty it is ngx.log (nginx's error log); elsewhere stderr, except
-- "debug" (the server's notices), which a library must not print unasked.
local ngx_levels = rawget(_G, "ngx") and ngx.log and
  { debug = ngx.DEBUG, info = ngx.INFO, warn = ngx.WARN, error = ngx.ERR } or nil
--- Where pool events, echoed statements, warnings and the server's notices
-- go.  Replace it with any function of the same arguments.  Under OpenResty
-- it writes to nginx's error log (ngx.log, "debug" at ngx.DEBUG); elsewhere
-- to stderr, all but "debug".
-- @string message the text, with no secret in it
-- @string level "debug" (the server's NOTICE, INFO, LOG, DEBUG messages),
-- "info" (echo, echo_pool), "warn" (leaks, failed pre-warming, the server's
-- WARNINGs) or "error"
function dbpool.log(message, level)
  if ngx_levels then
    ngx.log(ngx_levels[level] or ngx.INFO, "dbpool: ", message)
  elseif level ~= "debug" then
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
-- Where the statement's parameters are read only after the checkout (the
-- yielding path under nginx, replica reads), the C readers look at them
-- first, so bad input raises before a connection is taken, with the same
-- message as conn:query's.
local function check_statement(method, sql, ...)
  local ok, why = pcall(core.check_statement, method, sql, ...)
  if not ok then error(why, 3) end
end
local function check_statement_table(method, sql, params)
  local ok, why = pcall(core.check_statement_table, method, sql, params)
  if not ok then error(why, 3) end
end

-- ===== Engine ===============================================================

local Engine = {}
Engine.__index = Engine

local engines = {}         -- this Lua state's Engine objects, by name

-- Under nginx: pool's numbers go to the instance's table (lua/dbpool/ngx.lua
-- M.share).  An engine declared in a worker whose table is the worker's
-- alone (dbpool not loaded in the master, or its arena full) is said once
-- per worker, at warn: its stats and pool_size = "auto" are per worker.
local said_private = false
local function share(pool)
  local why = ngx_path.share(pool)
  if why and not said_private then
    said_private = true
    dbpool.log(("engine %s is declared in a worker and has no instance table (%s): its "
      .. "stats, metrics and pool_size = \"auto\" decisions cover this worker alone "
      .. "(said once per worker)"):format(pool:name(), why), "warn")
  end
end

-- Each replica is a pool of its own, named "<name>/replica<i>" (so it shows
-- in stats and metrics as an engine), with the engine's options but its own
-- DSN and no role or policy of the primary's.  The core gives it that name
-- (core.open's third argument): engine names cannot hold '/', so no engine
-- passes for another's replica.
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
    o.dsn, o.replicas, o.role, o.policy = dsn, nil, nil, nil
    -- Under nginx, like the primary: no connection in the master (workers
    -- open min_idle from a timer, start_warming), and the replica's numbers
    -- go to the instance's table, so stats and metrics count every worker.
    pools[i] = core.open(o, not in_nginx, i)
    if in_nginx then share(pools[i]) end
  end
  return pools
end

-- engine.options: the options as given, but with each DSN as the core shows
-- it (secrets replaced by "***"): the real ones stay in C, and a table a
-- program may print or log keeps no password.
local function shown_options(options, pool, replicas)
  local copy = {}
  for k, v in pairs(options) do copy[k] = v end
  copy.dsn = pool:dsn()
  if type(options.replicas) == "table" then
    local list = {}
    for i, replica in ipairs(replicas or {}) do list[i] = replica:dsn() end
    copy.replicas = list
  end
  return copy
end

local function wrap(name, pool, options)
  local engine = setmetatable({ name = name, pool = pool, rr = 0 }, Engine)
  engine.replicas = open_replicas(name, options)
  engine.options = options and shown_options(options, pool, engine.replicas)
  types.attach(engine, Engine)                       -- decoders, in this Lua state
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
    ngx_path.resolve_soon(engine.pool)
    for _, replica in ipairs(engine.replicas or {}) do
      ngx_path.resolve_soon(replica)
      if engine.options then ngx_path.keep_warm(replica, engine.options.min_idle) end
    end
    if engine.options then ngx_path.keep_warm(engine.pool, engine.options.min_idle) end
    ngx_path.keep_sized(engine.pool)
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
    share(pool)
    ngx_path.keep_warm(pool, options.min_idle)                  -- not in the master
    ngx_path.keep_sized(pool)                                   -- pool_size = "auto"; idem
  end
  return ok, pool, created
end

--- The engine of `options.name`: made, or the one this process has with the
-- same options.  Opens no connection unless `min_idle` (a failure to
-- pre-warm is logged, not raised).
-- @tparam table options the options (README's table): `name` and `dsn` required
-- @treturn Engine
-- @raise on a bad option (naming it, what it must be, and what it got), a
-- violation of `options.policy` (listing every one), or the name registered
-- in this process with other options (naming the keys that differ)
-- Under nginx it opens no connection at all: workers open min_idle from a
-- timer.
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
  if known and known.pool == pool and not created and known.options then
    -- The registry compares every option but decoders (functions, per Lua state).
    if known.options and not types.same(known.options.decoders, options.decoders) then
      error(("dbpool: engine '%s' already exists with different options: decoders")
        :format(options.name), 2)
    end
    return known
  end
  return wrap(options.name, pool, options)
end

--- The engine of that name, also when another Lua state or thread of this
-- process made it.
-- @string name the registry key
-- @treturn ?Engine nil when there is none
function dbpool.get(name)
  if type(name) ~= "string" or name:find("\0", 1, true) then
    error("bad argument #1 to 'get' (a name without zero bytes expected, got "
      .. (type(name) == "string" and "one with a zero byte" or type(name)) .. ")", 2)
  end
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
-- (idle connections close now, checked-out ones on return; a checkout
-- still waiting for a connection gets nil, msg, err of kind "closed") and takes its
-- name, and its replicas', out of the process's registry: dbpool.engine may
-- make it again, with other options.  This state's Engine object for it
-- then raises on use.
function dbpool.remove(name)
  if type(name) ~= "string" then
    error("bad argument #1 to 'remove' (string expected, got " .. type(name) .. ")", 2)
  end
  local engine = engines[name]
  if engine then
    core.set_decoders(engine.pool, nil)
    for _, pool in ipairs(engine.replicas or {}) do core.set_decoders(pool, nil) end
  end
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

--- The engines this Lua state made or looked up.
-- @treturn table `{ name = Engine }`, a copy
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

--- A named engine: `dbpool.engine`'s result.  Fields: `name`, `pool` (its
-- `dbpool.Pool`), `options` (a copy of the options given, each DSN in it as
-- `pool:dsn()` shows it, secrets replaced by "***"; nil for one found with
-- `get`), `replicas`.
-- @type Engine

--- Checks out a connection, waiting up to `pool_timeout` (the wait for a
-- slot, connecting and its retries, pre-ping replacements together).  Under
-- OpenResty the wait yields.  Outside nginx it is C (`core.engine_connect`).
-- @function Engine:connect
-- @treturn dbpool.Conn the connection, or `nil, msg, err`: kind "timeout"
-- (SQLAlchemy's sentence, the pool's state in `err.detail`), "connect",
-- "circuit_open"

--- Checks out, runs one statement, gives the connection back.  Outside nginx
-- all in C with no Conn made (`core.engine_query`); under OpenResty the
-- checkout and the statement yield.
-- @function Engine:query
-- @string sql one statement with `$1..$n` placeholders
-- @param ... the parameters: nil, `dbpool.null`, booleans, numbers, strings, `dbpool.bytea(s)`
-- @return rows (`rows.columns`, `rows.affected`), or `nil, msg, err`
-- @raise before any checkout, when sql is not a string or a parameter cannot be sent

--- `query` with the parameters in one array (`params.n` counts trailing
-- nils), up to PostgreSQL's 65,535.
-- @function Engine:query_params
-- @string sql one statement with `$1..$n` placeholders
-- @tparam table params the parameters
-- @return rows, or `nil, msg, err`
-- @raise before any checkout, on a bad sql or parameter

--- Checks out, calls `fn(conn, ...)`, and always returns the connection,
-- also when fn raises.
-- @func fn called with a `dbpool.Conn` and the other arguments
-- @param ... passed to fn
-- @return fn's results, or `nil, msg, err` when no connection could be had
-- @raise what fn raised (after the return); at once, before any checkout,
-- when fn is not callable
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

--- Like `with`, on a replica when one is healthy (the next in turn whose
-- circuit breaker is not open), else on the primary (counted in
-- `stats().read_fallbacks`).
-- @func fn called with a `dbpool.Conn` and the other arguments
-- @param ... passed to fn
-- @return fn's results, or `nil, msg, err` when no connection could be had
-- @raise as `with`
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

--- One statement on a replica when one is healthy, else on the primary.
-- @string sql with `$1..$n` placeholders
-- @param ... the parameters
-- @return rows, or `nil, msg, err`
-- @raise when sql is not a string or a parameter cannot be sent
function Engine:read_query(sql, ...)
  check_statement("read_query", sql, ...)
  local conn, msg, err = read_connection(self)
  local rows, query_msg, query_err = query_once(conn, msg, err, sql, ...)   -- not a tail call: level 3 is our caller
  return rows, query_msg, query_err
end

-- ===== Transactions =========================================================

local conn_methods = core.conn_methods
local savepoints = setmetatable({}, { __mode = "k" })   -- Conn -> savepoints open

-- fn's packed pcall results r failed: it raised, returned nil, msg[, err],
-- or left the transaction aborted (a statement inside failed and fn went
-- on; COMMIT would silently roll it back).
local function failed(conn, r)
  if not r[1] or (r[2] == nil and r.n >= 3) then return true end
  local ok, status = pcall(conn.transaction_status, conn)
  return not ok or status == "inerror"
end

-- After the rollback of a failed fn: re-raise its error, return its own
-- nil, msg, err, or say the transaction was aborted.
local function after_rollback(conn, r, aborted)
  if not r[1] then error(r[2], 0) end
  if r[2] == nil and r.n >= 3 then return unpack(r, 2, r.n) end
  local ok, name = pcall(conn.pool_name, conn)
  return fail(ok and name or nil, "query", aborted)
end

-- BEGIN, fn, COMMIT on conn (idle): ROLLBACK when fn failed.
local function top_level(conn, fn, ...)
  local began, msg, err = conn:exec("BEGIN")
  if not began then return nil, msg, err end
  savepoints[conn] = 0
  local r = pack(pcall(fn, conn, ...))
  savepoints[conn] = nil
  if failed(conn, r) then
    pcall(conn.exec, conn, "ROLLBACK")   -- its own failure changes nothing: fn's is the news
    return after_rollback(conn, r, "transaction aborted by an earlier error; rolled back")
  end
  local done, commit_msg, commit_err = conn:exec("COMMIT")
  if not done then return nil, commit_msg, commit_err end
  return unpack(r, 2, r.n)
end

-- SAVEPOINT, fn, RELEASE inside conn's open transaction: ROLLBACK TO and
-- RELEASE when fn failed, as SQLAlchemy's begin_nested and psycopg's nested
-- transaction() do; the outer transaction goes on.
local function nested(conn, fn, ...)
  local depth = (savepoints[conn] or 0) + 1
  local name = "dbpool_sp_" .. depth
  local saved, msg, err = conn:exec("SAVEPOINT " .. name)
  if not saved then return nil, msg, err end
  savepoints[conn] = depth
  local r = pack(pcall(fn, conn, ...))
  savepoints[conn] = depth - 1
  if failed(conn, r) then
    pcall(conn.exec, conn, "ROLLBACK TO SAVEPOINT " .. name)
    pcall(conn.exec, conn, "RELEASE SAVEPOINT " .. name)
    return after_rollback(conn, r, "transaction aborted by an earlier error; rolled back to "
      .. "savepoint " .. name)
  end
  local released, release_msg, release_err = conn:exec("RELEASE SAVEPOINT " .. name)
  if not released then return nil, release_msg, release_err end
  return unpack(r, 2, r.n)
end

-- conn:transaction(fn, ...): BEGIN/COMMIT when idle, else a savepoint;
-- documented with the Conn class (docs/api/conn.luadoc).
function conn_methods.transaction(conn, fn, ...)
  check_callable(fn, "transaction")
  if conn:transaction_status() == "idle" then return top_level(conn, fn, ...) end
  return nested(conn, fn, ...)
end

--- BEGIN, `fn(conn, ...)`, COMMIT.  ROLLBACK instead when fn raises, when
-- fn returns `nil, msg[, err]`, or when a statement inside failed and left
-- the transaction aborted.  Inside, `conn:transaction(fn2)` nests (a
-- savepoint).
-- @func fn called with a `dbpool.Conn` and the other arguments
-- @param ... passed to fn
-- @return fn's results; fn's own `nil, msg, err`; `nil, msg, err` of kind
-- "query" when the transaction was aborted, or when BEGIN or COMMIT failed;
-- `nil, msg, err` when no connection could be had
-- @raise what fn raised (after the rollback); at once when fn is not callable
function Engine:transaction(fn, ...)
  check_callable(fn, "transaction")
  local conn, msg, err = checkout(self.pool)
  if not conn then return nil, msg, err end
  return finish(conn, pcall(top_level, conn, fn, ...))
end

-- engine:query(sql, ...) -> rows | nil, msg, err: checkout, one query, return.
-- Outside nginx that is core.engine_query, all in C with no Conn made
-- (pool:query); inside, the checkout and the statement must yield.
-- Under LuaJIT both go through the FFI first (dbpool.fastpath), which
-- answers SLOW for whatever it leaves to the classic path.
if in_nginx then
  local fast_query, SLOW, CONNECTED = ngx_path.query, ngx_path.SLOW, ngx_path.CONNECTED
  function Engine:query(sql, ...)
    local conn, msg, err = fast_query(type(self) == "table" and self.pool, sql, ...)
    if conn == CONNECTED then           -- the fast path connected; the statement is classic
      conn, msg = msg, nil
    elseif conn == SLOW then
      check_statement("query", sql, ...)
      conn, msg, err = checkout(self.pool)
    else
      return conn, msg, err
    end
    local rows, query_msg, query_err = query_once(conn, msg, err, sql, ...)   -- not a tail call: level 3 is our caller
    return rows, query_msg, query_err
  end
  function Engine:query_params(sql, params)
    check_statement_table("query_params", sql, params)
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
  if rawget(_G, "jit") and os.getenv("DBPOOL_FFI") ~= "0" then
    local fast = require "dbpool.fastpath"
    local fast_query, SLOW, engine_query = fast.query, fast.SLOW, core.engine_query
    function Engine:query(...)           -- no named sql: core.engine_query counts the arguments
      local rows, msg, err = fast_query(type(self) == "table" and self.pool, ...)
      if rows ~= SLOW then return rows, msg, err end
      return engine_query(self, ...)
    end
  end
end
-- engine:query_params(sql, params) -> rows | nil, msg, err: engine:query
-- with the parameters in one array (params.n counts trailing nils), up to
-- PostgreSQL's 65,535 on every Lua.

--- LISTEN on a connection of the engine's own (its options, outside the
-- pool's capacity and counters): see dbpool.listen.
-- @string channel the first channel (any string: it is quoted)
-- @return a Listener (`l:wait(timeout)`, `l:listen(ch)`, `l:unlisten(ch)`,
-- `l:close()`), or `nil, msg, err` when it could not connect
-- @raise on a channel that is not a non-empty string, or an engine with
-- `pgbouncer = true` (transaction pooling keeps no session to listen on)
function Engine:listen(channel)
  return listen.listen(self, channel)
end

--- One snapshot of the engine's counters, gauges and histograms; under
-- nginx, in a worker, for an engine made in the master: every worker of the
-- instance together (`.processes` of them live), as `dbpool.metrics()`.
-- @treturn table counters (checkouts, waits, timeouts, connects, ...),
-- gauges (idle, in_use, total, overflow, waiters, size, max_overflow,
-- capacity: pool_size + max_overflow, math.huge when unbounded; breaker),
-- and `wait`, `hold`, `connect` as `{count, sum, mean, p50, p95, p99,
-- buckets}` in seconds
function Engine:stats()
  return ngx_path and ngx_path.instance_rows(self.pool, true) or self.pool:stats()
end

--- Judges the engine: down (breaker open, or a live check failed), degraded
-- (utilization, p99 wait or timeouts over their thresholds since the
-- previous call), else healthy.
-- @tparam[opt] table thresholds overrides `dbpool.health_defaults` for this call
-- @treturn table `{ status = "healthy"|"degraded"|"down", reasons = {sentence, ...}, checked = {...} }`
-- @raise on an unknown threshold
function Engine:health(thresholds) return health.check(self, thresholds) end

--- pool_size and max_overflow from the engine's own numbers (Little's law).
-- @treturn table `{ pool_size, max_overflow, busy, rate, mean_hold, p99_wait, timeouts, reason }`
function Engine:advise() return advise.advise(self) end

--- Closes the idle connections and retires the checked-out ones (closed on
-- return, no longer counted); the engine starts again empty.  Replicas too.
function Engine:dispose()
  for _, pool in ipairs(self.replicas or {}) do pool:dispose() end
  return self.pool:dispose()
end

function Engine:__tostring()
  return ("dbpool.Engine(%s, %s)"):format(self.name, self.pool:dsn())
end

-- ===== Policies, markets, budgets ==========================================

--- Policies, markets and budgets.
-- @section policies

--- The built-in policies, `production` and `test`: plain lists of rules
-- (see `check`).
dbpool.policies = policy.policies
--- What `Engine:health` judges against: `utilization` (0.70), `p99_wait`
-- (0.1 s), `timeouts` (0), `ping` (true).  Change them process-wide here.
dbpool.health_defaults = health.defaults

--- Every engine of the process, whichever Lua state made it, in
-- Prometheus' text format: counters, gauges and histograms, each labelled
-- `engine="<name>"` (under nginx one series per worker of the instance,
-- labelled `worker`).
-- @treturn string
function dbpool.metrics()
  return metrics.render(ngx_path and ngx_path.instance_rows)
end

-- Calls fn and raises its error at the caller of the dbpool function.
local function blame_caller(ok, ...)
  if not ok then error((...), 3) end
  return ...
end

--- Checks options or engines against a policy.  A policy is a list of rules:
-- `{option=, min=, max=}`, `{option=, equals=}`, `{option=, at_least=,
-- times=}`, `{capacity={min=, max=}}`, `{total_capacity={min=, max=}}`.
-- @param x an options table, an Engine, or a list or map of them (such as
-- what `resolve` returns)
-- @param p a policy name ("production", "test") or a list of rules
-- @treturn boolean ok
-- @treturn {string,...} violations, each naming the engine, option, value and bound
-- @raise on an unknown policy, a malformed rule, or bad options
function dbpool.check(x, p)
  return blame_caller(pcall(policy.check, x, p))
end

--- One engine per market from one table: `resolve`, then `engine` for each.
-- A refused configuration builds no engine.
-- @tparam table spec `{ env =, defaults =, environments =, markets = }`: options
-- merge defaults < environments[env] < markets[name]; env defaults to
-- $DBPOOL_ENV, else "development"
-- @treturn table `{ name = Engine }`
-- @treturn string env
-- @raise as `resolve`, and as `engine`
function dbpool.configure(spec)
  return blame_caller(pcall(configure.configure, dbpool, spec))
end

--- What `configure` would build: the merged options by market, validated
-- as engine creation validates them and checked against each policy they
-- carry (across every market that carries it), with no engine and no
-- connection.  For an app's specs: no server needed, and any number of
-- environments in one run.
-- @tparam table spec as `configure`'s
-- @treturn table `{ name = options }`, each with `name` set
-- @treturn string env
-- @raise naming where, on an unknown key, environment or option, an invalid
-- option, or a policy violation (listing every one)
function dbpool.resolve(spec)
  return blame_caller(pcall(configure.resolve, spec))
end

--- Whether `instances x (sum of capacities) + reserve` fits the server.
-- @tparam table spec `{ instances = 1, engines = dbpool.engines(), reserve = 0,
-- max_connections =, superuser_reserved_connections = 3, live =,
-- pgbouncer =, apply = false }`: `live` an engine (or true: the first) to read
-- the server's limits from; `pgbouncer` an engine on PgBouncer's admin
-- console; `apply` sets `size_limits` on the `pool_size = "auto"` engines
-- @treturn table `{ fits, needed, available, sentence, size_limits, ... }`
-- (`size_limits`: the most each auto engine's size may be per process for
-- the fleet to fit, by name), or `nil, msg, err`
-- when reading live limits failed
-- @raise on bad instances, or no max_connections and no live engine
function dbpool.budget(spec)
  return blame_caller(pcall(budget.budget, dbpool, spec))
end

--- Two starting points for pool_size, each with its reasoning.
-- @tparam table spec `{ cpus =, mem_gb =, spindles = 0 }`
-- @treturn table `{ adaptive = {pool_size, reason}, classic = {pool_size, reason} }`
-- @raise when cpus or mem_gb is missing or out of range
function dbpool.suggest_pool_size(spec)
  return blame_caller(pcall(budget.suggest_pool_size, spec))
end

dbpool.Engine = Engine
return dbpool
