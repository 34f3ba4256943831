-- bench/openresty/bench_handlers.lua: ways for an nginx worker to run a
-- PostgreSQL query, for bench/openresty/run.sh.
--
--   blocking  raw libpq through LuaJIT's FFI: PQexecParams on a connection
--             kept per worker.  The worker blocks in libpq until the answer
--             is in, and no other request of that worker runs meanwhile.
--             This is what dbpool's engine:query did in nginx before it had
--             an OpenResty path, minus the pool's own few microseconds.
--   poll      raw libpq through the FFI, non-blocking: one connection per
--             in-flight request, kept per worker; PQsendQueryParams, then
--             PQconsumeInput / PQisBusy polled from a loop that yields with
--             ngx.sleep.  The mechanism, without dbpool.
--   thread    dbpool's engine:query offloaded with ngx.run_worker_thread to
--             nginx's thread pool "dbpool"; the thread's own Lua VM finds the
--             worker's pool by name (the registry is process-wide), blocks
--             there, and the request yields meanwhile.
--   dbpool    dbpool's engine:query in the handler, as the core does it
--             now: blocking before the core had an OpenResty path, the
--             non-blocking/yielding path once lua/dbpool/ngx.lua exists.
-- The raw libpq handlers send the same extended-protocol query dbpool does
-- (PQexecParams / PQsendQueryParams, no parameters, text results).
local dbpool = require "dbpool"

local M = {}

M.sql = {
  select1 = "SELECT 1",
  rows20 = "SELECT g AS id, md5(g::text) AS name FROM generate_series(1, 20) g",
  sleep2ms = "SELECT pg_sleep(0.002)",
}
-- Rows each query returns: every handler that builds rows is checked
-- against it, so that none wins by doing less.
local ROWS = { select1 = 1, rows20 = 20, sleep2ms = 1 }

local ENGINE = "BENCH"
local PER_WORKER = 32            -- connections per worker, dbpool's and pgmoon's alike
local pgmoon, pgmoon_config      -- set by M.init when PGMOON_DIR is given

function M.init()                                  -- init_by_lua: master, before fork
  local dsn = assert(os.getenv("DBPOOL_TEST_DSN"), "DBPOOL_TEST_DSN is not set")
  -- 32 per worker: every wrk connection can hold one (thread handler).
  -- BENCH_YIELD_AFTER: the engine's yield_after (default 0), to measure a spin.
  local pgmoon_dir = os.getenv("PGMOON_DIR")
  if pgmoon_dir then
    package.path = pgmoon_dir .. "/?.lua;" .. pgmoon_dir .. "/?/init.lua;" .. package.path
    pgmoon = require "pgmoon"
    local user, host, port, db = dsn:match("^postgresql://([^@:]+)@([^:/]+):(%d+)/([^?]+)$")
    assert(user, "DBPOOL_TEST_DSN: expected postgresql://user@host:port/db")
    pgmoon_config = { host = host, port = port, user = user, database = db,
                      application_name = "pgmoon-bench-openresty" }
  end
  dbpool.engine { name = ENGINE, dsn = dsn, pool_size = PER_WORKER, max_overflow = 0,
                  pool_timeout = 30, application_name = "dbpool-bench-openresty",
                  yield_after = tonumber(os.getenv("BENCH_YIELD_AFTER")) or 0 }
  dbpool.engine { name = ENGINE .. "_PREPARED", dsn = dsn, pool_size = PER_WORKER, max_overflow = 0,
                  pool_timeout = 30, application_name = "dbpool-bench-openresty",
                  prepare_threshold = 1,
                  yield_after = tonumber(os.getenv("BENCH_YIELD_AFTER")) or 0 }
end

-- ---- dbpool: engine:query in the handler --------------------------------------

local function dbpool_query(sql)
  local rows, err = dbpool.get(ENGINE):query(sql)
  if not rows then return nil, err end
  return rows
end

-- dbpool_prepared: the same with prepare_threshold = 1 (an option pgmoon
-- lacks): the server parses and plans each text once per connection.
local function dbpool_prepared(sql)
  local rows, err = dbpool.get(ENGINE .. "_PREPARED"):query(sql)
  if not rows then return nil, err end
  return rows
end

-- ---- pgmoon: pure Lua over cosockets, nginx's keepalive pool ------------------
--
-- pgmoon 1.17 from ../shared/third_party/pgmoon (PGMOON_DIR), never copied
-- into the project.  Connections per worker as dbpool's: a keepalive pool of
-- PER_WORKER, no idle timeout.  Simple query protocol, as pgmoon always does.

local function pgmoon_query(sql)
  local pg = pgmoon.new(pgmoon_config)
  local ok, err = pg:connect()
  if not ok then return nil, err end
  local rows
  rows, err = pg:query(sql)
  if not rows then
    pg:disconnect()
    return nil, err
  end
  pg:keepalive(0, PER_WORKER)
  return rows
end

-- ---- thread: ngx.run_worker_thread ------------------------------------------

-- Runs in a worker thread's own Lua VM (module bench_handlers, function
-- thread_query): only strings, numbers, booleans and nil cross over.
local thread_engine
function M.thread_query(query)
  thread_engine = thread_engine or dbpool.get(ENGINE)
  local rows, err = thread_engine:query(M.sql[query])
  if not rows then return false, tostring(err) end
  return true
end

local function thread(_, query)
  local ok, res, err = ngx.run_worker_thread("dbpool", "bench_handlers", "thread_query", query)
  if not ok then return nil, res end               -- the thread could not run it
  if not res then return nil, err end
  return true
end

-- ---- raw libpq through the FFI: blocking, and polled --------------------------

local ffi, pq
local idle = {}                                    -- this worker's idle non-blocking PGconn*
local blocking_conn                                -- this worker's blocking PGconn*

local function load_pq()
  ffi = require "ffi"
  ffi.cdef [[
    typedef struct pg_conn PGconn;
    typedef struct pg_result PGresult;
    PGconn *PQconnectdb(const char *conninfo);
    int PQstatus(const PGconn *conn);
    char *PQerrorMessage(const PGconn *conn);
    int PQsetnonblocking(PGconn *conn, int arg);
    int PQsendQueryParams(PGconn *conn, const char *command, int nParams,
                          const unsigned int *paramTypes, const char *const *paramValues,
                          const int *paramLengths, const int *paramFormats, int resultFormat);
    PGresult *PQexecParams(PGconn *conn, const char *command, int nParams,
                           const unsigned int *paramTypes, const char *const *paramValues,
                           const int *paramLengths, const int *paramFormats, int resultFormat);
    int PQflush(PGconn *conn);
    int PQconsumeInput(PGconn *conn);
    int PQisBusy(PGconn *conn);
    PGresult *PQgetResult(PGconn *conn);
    int PQresultStatus(const PGresult *res);
    void PQclear(PGresult *res);
    void PQfinish(PGconn *conn);
  ]]
  -- dbpool.core already linked libpq into the process: the same library.
  pq = ffi.load("libpq.so.5")
end

-- Yields to nginx between polls: at once for the first few (a fast query's
-- answer is usually in after one event-loop turn), then every millisecond.
local function wait_turn(n)
  if n < 8 then ngx.sleep(0) else ngx.sleep(0.001) end
end

local PGRES_TUPLES_OK, PGRES_COMMAND_OK = 2, 1

-- Connecting blocks (PQconnectdb); it happens once per connection.
local function connect()
  if not pq then load_pq() end
  local conn = pq.PQconnectdb(os.getenv("DBPOOL_TEST_DSN"))
  if pq.PQstatus(conn) ~= 0 then
    local msg = ffi.string(pq.PQerrorMessage(conn))
    pq.PQfinish(conn)
    return nil, msg
  end
  return conn
end

local function blocking(sql)
  if not blocking_conn then
    local err
    blocking_conn, err = connect()
    if not blocking_conn then return nil, err end
  end
  local res = pq.PQexecParams(blocking_conn, sql, 0, nil, nil, nil, nil, 0)
  local st = res ~= nil and pq.PQresultStatus(res) or -1
  if res ~= nil then pq.PQclear(res) end
  if st ~= PGRES_TUPLES_OK and st ~= PGRES_COMMAND_OK then
    local msg = ffi.string(pq.PQerrorMessage(blocking_conn))
    pq.PQfinish(blocking_conn)
    blocking_conn = nil
    return nil, msg
  end
  return true
end

local function poll(sql)
  local conn = table.remove(idle)
  if conn == nil then
    local err
    conn, err = connect()
    if not conn then return nil, err end
    pq.PQsetnonblocking(conn, 1)
  end
  if pq.PQsendQueryParams(conn, sql, 0, nil, nil, nil, nil, 0) ~= 1 then
    local msg = ffi.string(pq.PQerrorMessage(conn))
    pq.PQfinish(conn)
    return nil, msg
  end
  local n = 0
  while pq.PQflush(conn) == 1 do wait_turn(n); n = n + 1 end
  n = 0
  while true do
    if pq.PQconsumeInput(conn) ~= 1 then
      local msg = ffi.string(pq.PQerrorMessage(conn))
      pq.PQfinish(conn)
      return nil, msg
    end
    if pq.PQisBusy(conn) == 0 then break end
    wait_turn(n); n = n + 1
  end
  local ok = true
  while true do
    local res = pq.PQgetResult(conn)
    if res == nil then break end
    local st = pq.PQresultStatus(res)
    if st ~= PGRES_TUPLES_OK and st ~= PGRES_COMMAND_OK then ok = false end
    pq.PQclear(res)
  end
  idle[#idle + 1] = conn
  if not ok then return nil, ffi.string(pq.PQerrorMessage(conn)) end
  return true
end

-- ---- dispatch -----------------------------------------------------------------

local handlers = { blocking = blocking, poll = poll, thread = thread, dbpool = dbpool_query,
                   dbpool_prepared = dbpool_prepared, pgmoon = pgmoon_query }

function M.serve(handler, query)
  local sql = M.sql[query]
  local ok, err
  if handler == "thread" then ok, err = thread(sql, query) else ok, err = handlers[handler](sql) end
  if ok and type(ok) == "table" and #ok ~= ROWS[query] then
    ok, err = nil, ("%d rows, expected %d"):format(#ok, ROWS[query])
  end
  if not ok then
    ngx.status = 503
    ngx.log(ngx.ERR, handler, " ", query, ": ", tostring(err))
    ngx.say("error")
    return
  end
  ngx.say("ok")
end

return M
