-- spec/nginx/test_app.lua: handlers of spec/nginx/nginx.conf.  Each answers
-- JSON with the worker's pid and the server-side start and end of the
-- request (ngx.now() after ngx.update_time(): the real clock, not the
-- event loop's cached one), so a spec can tell whether two requests of one
-- worker overlapped.
local dbpool = require "dbpool"
local json = require("cjson").new()

local app = {}

-- Issue 18's engines, made in the master too.
local function init_lifecycle(dsn)
  -- Queried here, in the master, which must then keep no connection.
  local master = dbpool.engine { name = "MASTER", dsn = dsn, pool_size = 1, max_overflow = 0,
                                 application_name = "dbpool-nginx-master" }
  local rows = assert(master:query("SELECT 1 AS one"))
  assert(rows[1].one == 1)
  -- Kept warm by each worker, from a timer.
  dbpool.engine { name = "WARM", dsn = dsn, pool_size = 2, max_overflow = 0, min_idle = 2,
                  application_name = "dbpool-nginx-warm" }
end

function app.init()        -- init_by_lua: the master, before fork
  local dsn = os.getenv("DBPOOL_TEST_DSN")
  if not dsn or dsn == "" then error("DBPOOL_TEST_DSN is not set (run under scripts/with-pg.sh)") end
  dbpool.engine { name = "T", dsn = dsn, pool_size = 4, max_overflow = 0, pool_timeout = 5,
                  application_name = "dbpool-nginx-spec" }
  -- One connection, no overflow, a short timeout: a second checkout has to
  -- wait for the first to be returned, and gives up after 3 s.
  dbpool.engine { name = "SLOT", dsn = dsn, pool_size = 1, max_overflow = 0, pool_timeout = 3,
                  application_name = "dbpool-nginx-spec" }
  -- One connection each, for the event-driven wait's lifetimes.
  dbpool.engine { name = "FASTKILL", dsn = dsn, pool_size = 1, max_overflow = 0, pool_timeout = 3,
                  application_name = "dbpool-nginx-spec" }
  dbpool.engine { name = "KILL", dsn = dsn, pool_size = 1, max_overflow = 0, pool_timeout = 3,
                  application_name = "dbpool-nginx-spec" }
  dbpool.engine { name = "RECYCLE", dsn = dsn, pool_size = 1, max_overflow = 0, pool_timeout = 3,
                  pool_recycle = 0.2, application_name = "dbpool-nginx-spec" }
  init_lifecycle(dsn)
  app.loaded_at_init = app.dbpool_modules()
end

-- The dbpool modules loaded in this Lua VM, sorted.
function app.dbpool_modules()
  local names = {}
  for name in pairs(package.loaded) do
    if name == "dbpool" or name:find("^dbpool%.") then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- ===== Phases where nginx cannot yield (issue 18) ===========================
-- A one-second statement tried in the phase: dbpool must refuse at once.
-- What it said goes to the error log, "phase-check <phase>: <message>",
-- where spec/nginx/phases_spec.lua reads it.
function app.phase_try(phase)
  local ok, rows, msg = pcall(function()
    return dbpool.get("T"):query("SELECT pg_sleep(1)")
  end)
  local said = ok and ("no error: " .. tostring(rows and "rows" or msg)) or tostring(rows)
  ngx.log(ngx.NOTICE, "phase-check ", phase, ": ", said)
  return said
end

-- Also with a connection checked out earlier, in the content phase.
function app.phase_try_conn(phase)
  local ok, msg = pcall(function() return ngx.ctx.conn:query("SELECT pg_sleep(1)") end)
  ngx.ctx.conn:close()
  ngx.log(ngx.NOTICE, "phase-check-conn ", phase, ": ", ok and "no error" or tostring(msg))
end

function app.phase_content()
  ngx.ctx.conn = assert(dbpool.get("T"):connect())
  ngx.header.content_type = "application/json"
  ngx.say('{"phase":"content"}')
end

function app.init_worker()
  app.phase_try("init_worker")
end

-- init_by_lua of instance.conf, run again at each reload: INST's pool_size
-- comes from conf/instance_pool_size (default 2) in nginx's prefix.
function app.init_instance()
  local dsn = os.getenv("DBPOOL_TEST_DSN")
  if not dsn or dsn == "" then error("DBPOOL_TEST_DSN is not set (run under scripts/with-pg.sh)") end
  local f = io.open(ngx.config.prefix() .. "conf/instance_pool_size")
  local size = f and tonumber(f:read("*l")) or 2
  if f then f:close() end
  dbpool.engine { name = "INST", dsn = dsn, pool_size = size, max_overflow = 0, pool_timeout = 10,
                  application_name = "dbpool-nginx-instance" }
  -- pool_size = "auto" (spec/nginx/autosize_spec.lua): one decision per
  -- instance, each worker sized to its share.  Its resize lines (echo_pool)
  -- are repeated at notice, "resize-line: <line>", where the spec counts
  -- them (the error log is at notice, above dbpool.log's info).
  dbpool.engine { name = "AUTO", dsn = dsn, pool_size = "auto", max_overflow = 2,
                  auto = { min = 1, max = 4, interval = 0.2 }, pool_timeout = 10,
                  echo_pool = true, application_name = "dbpool-nginx-auto" }
  local log = dbpool.log
  dbpool.log = function(message, level)
    if message:find("engine AUTO: pool_size auto", 1, true) then
      ngx.log(ngx.NOTICE, "resize-line: ", message)
    elseif message:find("engine AUTO: this worker's share", 1, true) then
      ngx.log(ngx.NOTICE, "close-line: ", message)
    end
    return log(message, level)
  end
end

function app.init_cap()    -- init_by_lua of cap.conf: two workers share one cap
  local dsn = os.getenv("DBPOOL_TEST_DSN")
  if not dsn or dsn == "" then error("DBPOOL_TEST_DSN is not set (run under scripts/with-pg.sh)") end
  dbpool.engine { name = "CAP", dsn = dsn, pool_size = 4, max_overflow = 0, pool_timeout = 10,
                  max_total_connections = 3, application_name = "dbpool-nginx-cap" }
end

local function now()
  ngx.update_time()
  return ngx.now()
end

local function ms_arg(default)
  local ms = tonumber(ngx.var.arg_ms) or default
  return math.max(0, math.min(ms, 10000))
end

-- Runs fn() -> result | nil, msg, err and answers 200 with the result, or
-- 503 with the error, in either case with the timing.
local function serve(fn)
  local started = now()
  local ok, result, msg, err = pcall(fn)
  local body = { pid = ngx.worker.pid(), started = started }
  if not ok then
    body.error, body.kind = tostring(result), "raised"
  elseif result == nil then
    body.error, body.kind = "failed: " .. msg, err and err.kind  -- msg is a string
  else
    body.result = result
  end
  body.finished = now()
  ngx.status = body.error and 503 or 200
  ngx.header.content_type = "application/json"
  ngx.say(json.encode(body))
end

local function first_value(rows, msg, err)
  if not rows then return nil, msg, err end
  return rows[1][rows.columns[1]]
end

function app.fast()
  serve(function() return first_value(dbpool.get("T"):query("SELECT 1 AS one")) end)
end

function app.slow()
  local ms = ms_arg(200)
  serve(function()
    local rows, msg, err = dbpool.get("T"):query("SELECT pg_sleep($1) AS slept", ms / 1000)
    if not rows then return nil, msg, err end
    return ms
  end)
end

function app.yield()
  local ms = ms_arg(200)
  serve(function() ngx.sleep(ms / 1000); return ms end)
end

function app.slot_hold()
  local ms = ms_arg(1000)
  serve(function()
    local conn, msg, err = dbpool.get("SLOT"):connect()
    if not conn then return nil, msg, err end
    local ok, rows, qerr = pcall(conn.query, conn, "SELECT pg_backend_pid() AS pid")
    -- Holding the checkout across a yield: other requests of this worker run meanwhile.
    ngx.sleep(ms / 1000)
    conn:close()
    if not ok then error(rows, 0) end
    if not rows then return nil, qerr end
    return rows[1].pid
  end)
end

-- Runs in a thread of the "dbpool" thread pool, in that thread's own Lua VM:
-- the engine is found by name in the process-wide registry, not created.
function app.thread_query()
  local engine = require("dbpool").get("SLOT")
  if not engine then return nil, "no engine SLOT in the registry" end
  local rows, msg = engine:query("SELECT pg_backend_pid() AS pid")
  if not rows then return nil, msg end
  return rows[1].pid, engine:stats().checkouts
end

-- The same engine from the main VM and from a worker thread's VM: one pool
-- (one connection, so the same backend), one set of counts.
function app.shared()
  serve(function()
    local engine = dbpool.get("SLOT")
    local main_pid = first_value(engine:query("SELECT pg_backend_pid() AS pid"))
    local before = engine:stats().checkouts
    local ok, thread_pid, thread_checkouts = ngx.run_worker_thread("dbpool", "test_app", "thread_query")
    if not ok then return nil, "run_worker_thread: " .. tostring(thread_pid) end
    if not thread_pid then return nil, thread_checkouts end
    return { main_pid = main_pid, thread_pid = thread_pid, checkouts_before = before,
             thread_checkouts = thread_checkouts, checkouts_after = engine:stats().checkouts }
  end)
end

function app.cap_slow()
  local ms = ms_arg(300)
  serve(function()
    local engine = dbpool.get(ngx.var.arg_engine or "CAP")   -- or WCAP, declared in the worker
    local rows, msg, err = engine:query("SELECT pg_sleep($1), pg_backend_pid() AS pid", ms / 1000)
    if not rows then return nil, msg, err end
    return rows[1].pid
  end)
end

local core = require "dbpool.core"

local function wait_counts()
  local counts = core.ngx_wait_counts()
  local ngx_path = require "dbpool.ngx"
  counts.event_driven = ngx_path.event_driven()
  counts.cap_expiries = ngx_path.cap_expiries
  return counts
end

function app.wait_counts()
  serve(wait_counts)
end

-- A request's light thread is killed while it waits for a 5 s statement:
-- its connection, unreachable, goes back through the garbage collector
-- (cancelling the statement), and its watch with it; the one connection of
-- engine KILL then serves again.
function app.wait_killed()
  serve(function()
    local engine = dbpool.get("KILL")
    local before = wait_counts()
    local th = ngx.thread.spawn(function()
      local rows, msg = engine:query("SELECT pg_sleep(5)")   -- not a tail call: the leak
      return rows, msg                                       -- report names this line
    end)
    ngx.sleep(0.1)                               -- it is waiting by now
    local during = wait_counts()
    assert(ngx.thread.kill(th))
    th = nil                                     -- luacheck: ignore (drop the last reference)
    collectgarbage(); collectgarbage()
    local after_gc = wait_counts()
    local t0 = now()
    local pid = first_value(engine:query("SELECT pg_backend_pid() AS pid"))
    return { before = before, during = during, after_gc = after_gc, pid = pid,
             query_seconds = now() - t0, leaks = engine:stats().leaks }
  end)
end

-- ===== engine:query through LuaJIT's FFI (issue 19) =========================

-- Every case of spec/nginx/fastpath_cases.lua through engine:query (the FFI path
-- when it can) and through a Conn's conn:query (the classic path).
function app.fastpath()
  serve(function()
    local cases = require "fastpath_cases"
    local ngx_path = require "dbpool.ngx"
    local engine = dbpool.get("T")
    assert(engine:query("SELECT 1"))               -- an idle connection for the FFI path
    local before = ngx_path.fast_queries
    local function via_engine(...) return engine:query(...) end
    local function classic(...)
      return engine:with(function(conn, ...) return conn:query(...) end, ...)
    end
    local mismatches = {}
    for _, case in ipairs(cases.cases) do
      local ok, why = cases.compare(case, via_engine, classic)
      if not ok then mismatches[#mismatches + 1] = why end
    end
    return { cases = #cases.cases, mismatches = mismatches,
             fast = ngx_path.fast_queries - before, checkedout = engine.pool:checkedout() }
  end)
end

-- A request killed while its statement runs on the FFI path: the slot comes
-- back when the collector frees the call, counted as a leak and reported
-- with the app's line, as a Conn's.
function app.fastpath_killed()
  serve(function()
    local engine = dbpool.get("FASTKILL")
    local ngx_path = require "dbpool.ngx"
    assert(engine:query("SELECT 1"))               -- idle now: the next one is the FFI path's
    local before = ngx_path.fast_queries
    local th = ngx.thread.spawn(function()
      local rows, msg = engine:query("SELECT pg_sleep(5)")   -- not a tail call: the leak
      return rows, msg                                       -- report names this line
    end)
    ngx.sleep(0.1)                                 -- it is waiting by now
    local fast = ngx_path.fast_queries - before
    local held = engine.pool:checkedout()
    assert(ngx.thread.kill(th))
    th = nil                                       -- luacheck: ignore (drop the last reference)
    collectgarbage(); collectgarbage()
    local t0 = now()
    local pid = first_value(engine:query("SELECT pg_backend_pid() AS pid"))
    return { fast = fast, held = held, pid = pid, query_seconds = now() - t0,
             leaks = engine:stats().leaks }
  end)
end

-- A connection watched by the main VM is closed in a worker thread's VM
-- (pool_recycle replaces it there): the thread must not touch nginx, so its
-- watch waits on a list until the worker's next watch frees it.
function app.thread_query_recycle()
  local engine = require("dbpool").get("RECYCLE")
  local rows, msg = engine:query("SELECT pg_backend_pid() AS pid")
  if not rows then return nil, msg end
  return rows[1].pid
end

function app.wait_thread_close()
  serve(function()
    local engine = dbpool.get("RECYCLE")
    local first = first_value(engine:query("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)"))
    local watched = wait_counts()
    ngx.sleep(0.3)                               -- older than pool_recycle now
    local ok, thread_pid = ngx.run_worker_thread("dbpool", "test_app", "thread_query_recycle")
    if not ok or not thread_pid then return nil, "run_worker_thread: " .. tostring(thread_pid) end
    local queued = wait_counts()
    local last = first_value(engine:query("SELECT pg_backend_pid() AS pid, pg_sleep(0.05)"))
    return { first = first, thread_pid = thread_pid, last = last, watched = watched,
             queued = queued, after = wait_counts() }
  end)
end

-- A statement bigger than the socket's send buffer: libpq must wait for
-- the socket to take more, so the watch must see writes too.
function app.big()
  local mb = math.max(1, math.min(tonumber(ngx.var.arg_mb) or 8, 64))
  serve(function()
    local text = string.rep("x", mb * 1024 * 1024)
    return first_value(dbpool.get("T"):query("SELECT length($1) AS n", text))
  end)
end

-- A result of ?n rows (default 40000) through engine:query: far more than
-- one read of the socket takes, so it arrives in many pieces.
function app.big_result()
  local n = math.max(1, math.min(tonumber(ngx.var.arg_n) or 40000, 200000))
  serve(function()
    local ngx_path = require "dbpool.ngx"
    local expiries, t0 = ngx_path.cap_expiries, now()
    local rows, msg, err = dbpool.get("T"):query(
      "SELECT g AS id, repeat('x', 100) AS name FROM generate_series(1, $1) g", n)
    if not rows then return nil, msg, err end
    return { rows = #rows, last = rows[#rows].id, seconds = now() - t0,
             cap_expiries = ngx_path.cap_expiries - expiries }
  end)
end

-- A request waits for SLOT's one connection; it is returned, and in the
-- same turn of the event loop a new request asks for it: the waiter must
-- get it first (QueuePool's order), the newcomer after.
function app.slot_fair()
  serve(function()
    local e = dbpool.get("SLOT")
    local order = {}
    local holder = assert(e:connect())
    local waiter = ngx.thread.spawn(function()
      local rows, msg = e:query("SELECT 'waiter' AS who")
      order[#order + 1] = rows and rows[1].who or ("waiter: " .. tostring(msg))
    end)
    ngx.sleep(0.05)                                -- the waiter waits by now
    holder:close()                                 -- wakes it; it runs at the next turn
    local newcomer = ngx.thread.spawn(function()   -- runs at once, before the waiter
      local rows, msg = e:query("SELECT 'newcomer' AS who")
      order[#order + 1] = rows and rows[1].who or ("newcomer: " .. tostring(msg))
    end)
    assert(ngx.thread.wait(waiter))
    assert(ngx.thread.wait(newcomer))
    return order
  end)
end

-- Engines with min_idle and pool_size = "auto" made in this worker and
-- removed, n times: their timers must end with them.
function app.timer_churn()
  local n = math.max(1, math.min(tonumber(ngx.var.arg_n) or 30, 200))
  serve(function()
    local dsn = os.getenv("DBPOOL_TEST_DSN")
    local before = ngx.timer.pending_count()
    for _ = 1, n do
      dbpool.engine { name = "CHURN", dsn = dsn, pool_size = "auto", min_idle = 1,
                      auto = { min = 1, max = 2, interval = 0.05 }, max_overflow = 0,
                      application_name = "dbpool-nginx-spec" }
      ngx.sleep(0.01)                              -- its timers have started
      dbpool.remove("CHURN")
    end
    ngx.sleep(1.2)                                 -- every chain's next run has come
    return { n = n, before = before, after = ngx.timer.pending_count() }
  end)
end

function app.slot_use()
  serve(function() return first_value(dbpool.get("SLOT"):query("SELECT pg_backend_pid() AS pid")) end)
end

-- min_idle inside nginx: a request invalidates one of REFILL's two
-- connections; its return opens nothing, a timer refills (within 3 s).
function app.refill()
  serve(function()
    local dsn = os.getenv("DBPOOL_TEST_DSN")
    local e = dbpool.get("REFILL") or dbpool.engine { name = "REFILL", dsn = dsn, pool_size = 2,
      max_overflow = 0, min_idle = 2, application_name = "dbpool-nginx-spec" }
    local warm_by = now() + 3                    -- min_idle is opened by a timer
    while e.pool:checkedin() < 2 and now() < warm_by do ngx.sleep(0.01) end
    local before = e:stats().connects
    local c = assert(e:connect())
    c:invalidate()
    local by_caller = e:stats().connects - before
    local deadline = now() + 3
    while e.pool:checkedin() < 2 and now() < deadline do ngx.sleep(0.01) end
    return { by_caller = by_caller, idle = e.pool:checkedin(), connects = e:stats().connects - before }
  end)
end

-- A checkout against ?port= (a listener that never answers), pool_timeout 1.
function app.silent()
  serve(function()
    local dsn = ("postgresql://postgres@127.0.0.1:%d/postgres"):format(tonumber(ngx.var.arg_port))
    local e = dbpool.engine { name = "SILENT" .. ngx.var.arg_port, dsn = dsn, pool_size = 1,
      max_overflow = 0, pool_timeout = 1 }
    local c, msg, err = e:connect()
    if c then c:close() return "connected?" end
    return nil, msg, err
  end)
end

-- Engine PREPING pings at every checkout (pre_ping_bypass = 0), within
-- ping_timeout 1 s: /preping/backend answers the backend pid of its one
-- connection, left idle; /preping/query checks out (the pre-ping),
-- answers its connection's backend pid and the engine's counters, and
-- removes the engine.
local function preping_engine()
  return dbpool.get("PREPING") or dbpool.engine { name = "PREPING",
    dsn = os.getenv("DBPOOL_TEST_DSN"), pool_size = 1, max_overflow = 0, pool_timeout = 5,
    pool_pre_ping = true, pre_ping_bypass = 0, ping_timeout = 1,
    application_name = "dbpool-nginx-preping" }
end

function app.preping_backend()
  serve(function() return first_value(preping_engine():query("SELECT pg_backend_pid() AS pid")) end)
end

function app.preping_query()
  serve(function()
    local e = preping_engine()
    local pid, msg, err = first_value(e:query("SELECT pg_backend_pid() AS pid"))
    if not pid then return nil, msg, err end
    local s = e:stats()
    dbpool.remove("PREPING")      -- its connection and socket watch gone: worker_spec counts them
    return { pid = pid, pre_ping_failures = s.pre_ping_failures, ping_timeouts = s.ping_timeouts,
             connects = s.connects, checkedout = s.checkedout }
  end)
end

-- conn:ping() on engine PINGED (no pre-ping, ping_timeout 1 s):
-- /ping/conn?pid=1 answers the backend pid of its one connection, left
-- idle; /ping/conn checks it out, pings, and answers what the ping said
-- and how long it took, then removes the engine.
function app.ping_conn()
  serve(function()
    local e = dbpool.get("PINGED") or dbpool.engine { name = "PINGED",
      dsn = os.getenv("DBPOOL_TEST_DSN"), pool_size = 1, max_overflow = 0, ping_timeout = 1,
      application_name = "dbpool-nginx-pinged" }
    local c, msg, err = e:connect()
    if not c then return nil, msg, err end
    if ngx.var.arg_pid then
      local pid = c:backend_pid()
      c:close()
      return pid
    end
    local t0 = now()
    local ok, pmsg, perr = c:ping()
    local took = now() - t0
    c:close()
    local s = e:stats()
    dbpool.remove("PINGED")
    return { ok = ok or false, kind = perr and perr.kind or nil, message = pmsg, took = took,
             ping_timeouts = s.ping_timeouts }
  end)
end

-- engine:health() on engine PINGH (pool_pre_ping at every checkout,
-- ping_timeout 1 s): /ping/health?pid=1 answers the backend pid of its one
-- connection, left idle; /ping/health answers the health check, how long
-- it took and the pre-ping failures, then removes the engine.
function app.ping_health()
  serve(function()
    local e = dbpool.get("PINGH") or dbpool.engine { name = "PINGH",
      dsn = os.getenv("DBPOOL_TEST_DSN"), pool_size = 1, max_overflow = 0, ping_timeout = 1,
      pool_pre_ping = true, pre_ping_bypass = 0, application_name = "dbpool-nginx-pingh" }
    if ngx.var.arg_pid then
      return first_value(e:query("SELECT pg_backend_pid() AS pid"))
    end
    local t0 = now()
    local h = e:health()
    local took = now() - t0
    local s = e:stats()
    dbpool.remove("PINGH")
    return { status = h.status, reasons = h.reasons, took = took,
             pre_ping_failures = s.pre_ping_failures }
  end)
end

-- Issue 20 under nginx: json, arrays, numeric = "string", an array
-- parameter, a decoder of an enum (its OID looked up in pg_type by the
-- engine's first checkout, yielding), and a nested transaction whose
-- failing part is undone while the outer one commits.
function app.types()
  serve(function()
    local dsn = os.getenv("DBPOOL_TEST_DSN")
    local e = dbpool.get("TYPES")
    if not e then
      assert(dbpool.get("T"):query([[DO $$ BEGIN CREATE TYPE nginx_mood AS ENUM ('ok', 'happy');
        EXCEPTION WHEN duplicate_object THEN NULL; END $$]]))
      e = dbpool.engine { name = "TYPES", dsn = dsn, pool_size = 1, max_overflow = 0,
        numeric = "string", application_name = "dbpool-nginx-spec",
        decoders = { nginx_mood = function(s) return s:upper() end } }
    end
    local rows, msg, err = e:query([=[SELECT '{"a": [1, null], "b": "x"}'::jsonb AS doc,
      ARRAY[[1, 2], [3, NULL]] AS grid, 1.50::numeric AS n, ARRAY['ok', 'happy']::nginx_mood[] AS moods,
      $1::int[] AS echoed]=], dbpool.array { 4, dbpool.null })
    if not rows then return nil, msg, err end
    local row = rows[1]
    local kept, tmsg, terr = e:transaction(function(c)
      assert(c:exec("CREATE TEMP TABLE tx (n int) ON COMMIT DROP"))
      assert(c:query("INSERT INTO tx VALUES (1)"))
      local undone = not pcall(c.transaction, c, function()
        assert(c:query("INSERT INTO tx VALUES (2)"))
        error("undo")
      end)
      local ns = assert(c:query("SELECT array_agg(n ORDER BY n) AS ns FROM tx"))[1].ns
      return { ns = ns, undone = undone }
    end)
    if not kept then return nil, tmsg, terr end
    return { doc = row.doc, grid = row.grid, n = row.n, moods = row.moods, echoed = row.echoed,
             tx = kept }
  end)
end

-- The dbpool modules loaded after health, advise and metrics ran, and
-- those loaded at init_by_lua.
function app.modules()
  serve(function()
    local engine = dbpool.get("T")
    engine:health()                       -- what a request may use, used once
    engine:advise()
    dbpool.metrics()
    return { now = app.dbpool_modules(), at_init = app.loaded_at_init }
  end)
end

-- init_worker_by_lua of instance.conf and cap.conf: engines declared in
-- each worker (after fork), which take their instance tables from the
-- arena the master mapped when it loaded dbpool (spec/nginx/worker_engines_spec.lua).
-- WINST: a fixed size; WAUTO: pool_size = "auto", its resize lines repeated
-- at notice as "worker-engine-resize: <line>"; WCAP: max_total_connections = 3.
local function worker_engines_options(dsn)
  return {
    WINST = { name = "WINST", dsn = dsn, pool_size = 2, max_overflow = 0, pool_timeout = 10,
              application_name = "dbpool-nginx-winst" },
    WAUTO = { name = "WAUTO", dsn = dsn, pool_size = "auto", max_overflow = 2,
              auto = { min = 1, max = 4, interval = 0.2 }, pool_timeout = 10,
              echo_pool = true, application_name = "dbpool-nginx-wauto" },
    WCAP = { name = "WCAP", dsn = dsn, pool_size = 4, max_overflow = 0, pool_timeout = 10,
             max_total_connections = 3, application_name = "dbpool-nginx-wcap" },
  }
end
app.worker_engines_options = worker_engines_options

function app.init_worker_engines(names)
  local options = worker_engines_options(os.getenv("DBPOOL_TEST_DSN"))
  -- No dbpool.init_worker(): the master's engines keep starting their
  -- timers at the first checkout (spec/nginx/autosize_spec.lua counts on it).
  for _, name in ipairs(names) do dbpool.engine(options[name]) end
  local log = dbpool.log
  dbpool.log = function(message, level)
    if message:find("engine WAUTO: pool_size auto", 1, true) then
      ngx.log(ngx.NOTICE, "worker-engine-resize: ", message)
    end
    return log(message, level)
  end
end

-- SELECT pg_sleep(ms / 1000) on ?engine= (declared in the worker; LAZY is
-- declared here, by this worker's first request for it).
function app.worker_query()
  local ms = ms_arg(0)
  local name = ngx.var.arg_engine or "WINST"
  serve(function()
    local engine = dbpool.get(name)
    if not engine and name == "LAZY" then
      engine = dbpool.engine { name = "LAZY", dsn = os.getenv("DBPOOL_TEST_DSN"), pool_size = 2,
                               max_overflow = 0, pool_timeout = 10,
                               application_name = "dbpool-nginx-lazy" }
    end
    local rows, msg, err = engine:query("SELECT pg_sleep($1), pg_backend_pid() AS pid", ms / 1000)
    if not rows then return nil, msg, err end
    return { worker = ngx.worker.id(), backend = rows[1].pid }
  end)
end

-- dbpool.remove("WINST") and the same dbpool.engine again, in this worker.
function app.worker_redeclare()
  serve(function()
    assert(dbpool.remove("WINST"))
    dbpool.engine(worker_engines_options(os.getenv("DBPOOL_TEST_DSN")).WINST)
    return { worker = ngx.worker.id() }
  end)
end

-- ?engine='s rows, one per worker, as app.auto_workers gives AUTO's.
function app.worker_rows()
  serve(function()
    local out = {}
    local pool = dbpool.get(ngx.var.arg_engine or "WAUTO").pool
    for i, r in ipairs(require("dbpool.ngx").instance_rows(pool) or {}) do
      local a = r.autosize or {}
      out[i] = { worker = r.worker, processes = r.processes, size = r.size, total = r.total,
                 idle = r.idle, in_use = r.in_use, overflow = r.overflow, checkouts = r.checkouts,
                 resizes = r.resizes, target = a.target or 0, decision = a.decision or 0,
                 instance_target = a.instance_target or 0, decided_by = a.decided_by or 0,
                 share = a.share or 0 }
    end
    return out
  end)
end

function app.inst_query()
  local ms = ms_arg(0)
  serve(function()
    local engine = dbpool.get("INST")
    local rows, msg, err = engine:query("SELECT pg_sleep($1)", ms / 1000)
    if not rows then return nil, msg, err end
    return { pool_size = engine.pool:size(), worker = ngx.worker.id() }
  end)
end

-- AUTO's rows, one per worker (what dbpool.metrics() labels worker=), with
-- the capacity counts and the autosize part of each.
function app.auto_workers()
  serve(function()
    local out = {}
    for i, r in ipairs(require("dbpool.ngx").instance_rows(dbpool.get("AUTO").pool)) do
      local a = r.autosize
      out[i] = { worker = r.worker, processes = r.processes, size = r.size, total = r.total,
                 idle = r.idle, in_use = r.in_use, overflow = r.overflow, waiters = r.waiters,
                 resizes = r.resizes, target = a.target, decision = a.decision or 0,
                 instance_target = a.instance_target or 0, decided_by = a.decided_by or 0,
                 share = a.share or 0, p99 = a.p99 }
    end
    return out
  end)
end

-- dbpool.budget{apply = true} for AUTO in whichever worker answers, as if
-- the instance were one of 2 against ?max= connections: size_limits.AUTO.
function app.auto_budget()
  serve(function()
    local b = assert(dbpool.budget { engines = { dbpool.get("AUTO") }, instances = 2,
      max_connections = tonumber(ngx.var.arg_max), superuser_reserved_connections = 0,
      apply = true })
    return { limit = b.size_limits.AUTO, worker = ngx.worker.id() }
  end)
end

-- ?n= timers in the worker that answers, each running SELECT pg_sleep(?ms=)
-- on AUTO back to back for ?secs=: load that reaches this worker alone.
function app.auto_load()
  local n, ms, secs = tonumber(ngx.var.arg_n) or 4, ms_arg(100), tonumber(ngx.var.arg_secs) or 3
  serve(function()
    local until_t = ngx.now() + secs
    for _ = 1, n do
      assert(ngx.timer.at(0, function(premature)
        while not premature and ngx.now() < until_t do
          assert(dbpool.get("AUTO"):query("SELECT pg_sleep($1)", ms / 1000))
        end
      end))
    end
    return { worker = ngx.worker.id() }
  end)
end

function app.auto_query()
  local ms = ms_arg(0)
  serve(function()
    local rows, msg, err = dbpool.get("AUTO"):query("SELECT pg_sleep($1)", ms / 1000)
    if not rows then return nil, msg, err end
    return { worker = ngx.worker.id() }
  end)
end

function app.inst_stats()
  serve(function()
    local s = dbpool.get(ngx.var.arg_engine or "INST"):stats()
    for _, h in ipairs { "wait", "hold", "connect" } do s[h].buckets = nil end
    s.capacity = nil                               -- may be math.huge: not JSON
    return s
  end)
end

-- ===== Issue 20: pipeline, stream, COPY, LISTEN (spec/nginx/protocol_spec.lua)

-- Runs fn(conn) on a connection of engine T, always giving it back.
local function with_t(fn)
  return dbpool.get("T"):with(fn)
end

function app.proto_pipeline()
  local ms = ms_arg(200)
  serve(function()
    return with_t(function(conn)
      local results, msg, err = conn:pipeline { { "SELECT 1 AS a" },
        { "SELECT pg_sleep($1) AS s", ms / 1000 }, { "SELECT 2 AS b" } }
      if not results then return nil, msg, err end
      return results[1][1].a + results[3][1].b
    end)
  end)
end

function app.proto_stream()
  local ms = ms_arg(200)
  serve(function()
    return with_t(function(conn)
      local sum = 0
      local n, msg, err = conn:stream("SELECT g, pg_sleep(CASE WHEN g = 2 THEN $1::float8 ELSE 0 END) " ..
        "FROM generate_series(1, 3) g", function(row) sum = sum + row.g end, ms / 1000)
      if not n then return nil, msg, err end
      return sum
    end)
  end)
end

function app.proto_copy_to()
  local ms = ms_arg(200)
  serve(function()
    return with_t(function(conn)
      local lines = {}
      local n, msg, err = conn:copy_to(("COPY (SELECT g FROM generate_series(1, 3) g, " ..
        "pg_sleep(%g)) TO STDOUT"):format(ms / 1000), function(line) lines[#lines + 1] = line end)
      if not n then return nil, msg, err end
      return table.concat(lines, ",")
    end)
  end)
end

-- A table whose trigger sleeps ms (a row's column) per row inserted.
local slow_table_made = false
local function slow_table(conn)
  if slow_table_made then return true end
  local ok, msg, err = conn:exec([[
    CREATE TABLE IF NOT EXISTS proto_copy_slow (ms int, note text);
    CREATE OR REPLACE FUNCTION proto_copy_slow_f() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_sleep(NEW.ms / 1000.0); RETURN NEW; END $$;
    DROP TRIGGER IF EXISTS proto_copy_slow_t ON proto_copy_slow;
    CREATE TRIGGER proto_copy_slow_t BEFORE INSERT ON proto_copy_slow
      FOR EACH ROW EXECUTE FUNCTION proto_copy_slow_f();]])
  slow_table_made = ok and true or false
  return ok, msg, err
end

function app.proto_copy_from()
  local ms = ms_arg(200)
  serve(function()
    return with_t(function(conn)
      local ok, msg, err = slow_table(conn)
      if not ok then return nil, msg, err end
      return conn:copy_from("COPY proto_copy_slow FROM STDIN",
                            { { 0, "first" }, { ms, "slow" }, { 0, "tab\there" } })
    end)
  end)
end

function app.proto_listen()
  local ms = ms_arg(200)
  serve(function()
    local channel = ("proto %d %d"):format(ngx.worker.pid(), math.random(1, 1e9))
    local l, msg, err = dbpool.get("T"):listen(channel)
    if not l then return nil, msg, err end
    local quiet, why = l:wait(0.05)               -- nothing yet: a timeout
    assert(quiet == nil and why == "timeout", "expected a timeout first")
    ngx.timer.at(ms / 1000, function()
      assert(dbpool.get("T"):query("SELECT pg_notify($1, 'late')", channel))
    end)
    local n
    n, msg, err = l:wait(ms / 1000 + 5)
    l:close()
    if not n then return nil, msg, err end
    return n.payload
  end)
end

return app
