-- dbpool.ngx: the OpenResty path, installed by dbpool when it is loaded
-- inside nginx.  Nothing here runs elsewhere: plain Lua keeps the blocking
-- path behind the same API.
--
-- In a phase that may yield (rewrite, access, content, timers, ...):
-- - conn:query / conn:exec send the statement without blocking and, unless
--   its result is already in (or arrives within yield_after seconds, default
--   0), yield to nginx until the worker's event loop sees the connection's
--   socket become ready (conn:_ngx_watch, csrc/lua_ngx_wait.c: an ngx.semaphore
--   posted by nginx itself).  Where that cannot be had (the module built
--   without nginx's headers, no free worker connection) they poll instead:
--   8 looks at the next turn of the event loop (ngx.sleep(0)), then one
--   every millisecond (measured in bench/openresty/results.md: waiting
--   inside the worker loses);
-- - a checkout that finds no free connection yields until a return in this
--   worker wakes it, or 5 ms passed, and tries again until pool_timeout,
--   instead of sleeping on a condition variable that would stall the worker
--   (and the request holding the connection it waits for);
-- - a checkout that needs a new connection makes it with libpq's
--   non-blocking connect, yielding between steps, for at most
--   connect_timeout and never past the checkout's deadline (pool_timeout
--   bounds the whole checkout, as in the core);
-- - min_idle is refilled by a timer (no thread in a worker), one yielding
--   connect at a time.
-- In init_by_lua (the master, at start-up) the blocking path is used, and a
-- connection is closed for good when it is returned: the master keeps none.
-- In the phases where nginx cannot yield (init_worker, set, header and body
-- filters, log, balancer, ssl_*, exit_worker) a call that would wait for
-- PostgreSQL raises at once, naming the phase and the way out
-- (ngx.timer.at(0, ...)), as cosockets do: blocking there would stall every
-- request of the worker.  A Lua VM of ngx.run_worker_thread is a thread of
-- its own, where blocking is what it is for.
local core = require "dbpool.core"

local M = {}

core.refill_by_host()          -- min_idle: a timer refills, not a thread (below)

local ngx = ngx
local sleep, get_phase = ngx.sleep, ngx.get_phase
local now = core.now

local YIELDABLE = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  preread = true,
}

-- The running code's phase, or nil where there is none (a worker thread).
local function phase_now()
  local ok, phase = pcall(get_phase)
  return ok and phase or nil
end

-- True when the running code may yield to nginx.
function M.can_yield()
  return YIELDABLE[phase_now()] == true
end

-- ngx.get_phase()'s name where the directive's differs.
local DIRECTIVE = { ssl_cert = "ssl_certificate" }

-- M.wait_mode(what) -> "yield" or "block" (init_by_lua; a worker thread);
-- raises in a phase where nginx cannot yield.  what names the call.
function M.wait_mode(what)
  local phase = phase_now()
  if YIELDABLE[phase] then return "yield" end
  if phase == nil or phase == "init" then return "block" end
  error(("dbpool: %s would wait for PostgreSQL, which is disabled in the context of "
    .. "%s_by_lua* (nginx cannot yield there: the whole worker would stall); run it "
    .. "from a timer, ngx.timer.at(0, fn, ...), or in an earlier phase"):format(what,
    DIRECTIVE[phase] or phase), 0)
end
local wait_mode = M.wait_mode
local function can_yield(what) return wait_mode(what) == "yield" end

-- Back-off between looks: the next turn of the event loop for the first
-- few (a fast statement is done by then), then 1 ms (nginx's timer
-- resolution), so that a long statement costs one wake-up per millisecond.
-- ngx.sleep(0) is the next turn only with OpenResty's delayed events
-- patch; without it (Debian's nginx) it is a 0 ms timer that logs a
-- warning each time, so 1 ms it is there too.
local QUICK_LOOKS = 8
local QUICK = core.ngx_sleep0_ok() and 0 or 0.001
local function delay_for(look)
  return look <= QUICK_LOOKS and QUICK or 0.001
end

local methods = core.conn_methods
local blocking_query, blocking_exec, blocking_query_params =
  methods.query, methods.exec, methods.query_params
local send, send_exec, send_params, collect =
  methods.send, methods.send_exec, methods.send_params, methods.collect

-- The event-driven wait: nginx watches the socket and posts a semaphore.
-- Semaphores are made here (lua-resty-core's ngx.semaphore) and kept for
-- the worker's life, indexed by the id conn:_ngx_watch hands back: a wake that
-- comes after its waiter is gone must find a live semaphore.
local watch = methods._ngx_watch
local semaphore               -- lua-resty-core's ngx.semaphore; false: not there
local watching                -- conn:_ngx_watch works here; false: it does not
local ffi = require "ffi"     -- nginx's Lua is LuaJIT
local semas, spare = {}, nil
-- A wake is never lost by design; this cap only bounds the cost if one were.
-- M.cap_expiries counts the waits that reached it (a spec holds it at 0).
local WAKE_CAP = 0.1
M.cap_expiries = 0

-- ngx.semaphore, or nil.  Loaded with this module (in init_by_lua when
-- the app loads dbpool there), never on a request.
do
  local ok, mod = pcall(require, "ngx.semaphore")
  semaphore = ok and mod or false
end
local function semaphores()
  return semaphore or nil
end

-- Decided at the first wait, in a worker: dbpool may be loaded by
-- init_by_lua in the master, whose event loop does not exist yet.
function M.event_driven()
  if watching == nil then
    watching = core.ngx_wait_ready() and semaphores() ~= nil
  end
  return watching
end

-- The semaphore that the socket of obj (a Conn, a Listener, or the FFI
-- path's call) posts, or nil: then poll.  watch_fn(obj, next_id, addr) ->
-- id | nil: conn:_ngx_watch or the FFI path's.
local function sema_by(watch_fn, obj)
  if not (watching or M.event_driven()) then return nil end
  local next_id = #semas + 1
  if not spare then
    local sema = semaphore.new(0)
    if not sema then return nil end
    spare = { sema = sema, addr = tonumber(ffi.cast("uintptr_t", sema.sem)) }
  end
  local id = watch_fn(obj, next_id, spare.addr)
  if not id then return nil end             -- e.g. worker_connections used up
  if id == next_id then semas[id], spare = spare.sema, nil end
  return semas[id]
end
local function sema_of(conn) return sema_by(watch, conn) end

-- Waits for a sent statement: up to yield_after in the worker, then yields
-- until the socket is ready (or polls).  A wake may be spurious: look again.
-- One wait for a statement's socket: on its semaphore, at most WAKE_CAP,
-- or (no semaphore) the next look of the polling back-off.  Returns the
-- looks made so far.
local function await_socket(sema, look)
  if sema then
    local _, why = sema:wait(WAKE_CAP)
    if why == "timeout" then M.cap_expiries = M.cap_expiries + 1 end
    return look
  end
  look = look + 1
  sleep(delay_for(look))
  return look
end

local function wait_result(conn, bound)
  local rows, msg, err = collect(conn, bound)
  if rows ~= false then return rows, msg, err end
  local sema = sema_of(conn)
  local look = 0
  while rows == false do
    look = await_socket(sema, look)
    rows, msg, err = collect(conn, 0)
  end
  return rows, msg, err
end

-- conn:pipeline, conn:stream, conn:copy_from and conn:copy_to (dbpool.conn)
-- wait between their steps as a statement does: where nginx can yield,
-- the request yields until the socket is ready (or polls); elsewhere
-- (init_by_lua, a worker thread) the step blocks; and in a phase that
-- cannot yield they raise.
local ops = require "dbpool.conn"
ops.mode = wait_mode
function ops.poll(look) sleep(delay_for(look)) end
-- left: seconds the caller may wait at most (a Listener's l:wait), which no
-- wake may cut short; else WAKE_CAP as a statement's.
function ops.wait(conn, look, left)
  local sema = sema_of(conn)                -- re-arms writes when libpq has output left
  if sema and left then
    sema:wait(left)
  elseif sema then
    local _, why = sema:wait(WAKE_CAP)
    if why == "timeout" then M.cap_expiries = M.cap_expiries + 1 end
  else
    sleep(delay_for(look))
  end
end

function methods.query(conn, sql, ...)
  if not can_yield("conn:query()") then return blocking_query(conn, sql, ...) end
  local ok, msg, err = send(conn, sql, ...)
  if not ok then return nil, msg, err end
  return wait_result(conn, conn:yield_after())
end

function methods.query_params(conn, sql, params)
  if not can_yield("conn:query_params()") then return blocking_query_params(conn, sql, params) end
  local ok, msg, err = send_params(conn, sql, params)
  if not ok then return nil, msg, err end
  return wait_result(conn, conn:yield_after())
end

function methods.exec(conn, sql)
  if not can_yield("conn:exec()") then return blocking_exec(conn, sql) end
  local ok, msg, err = send_exec(conn, sql)
  if not ok then return nil, msg, err end
  return wait_result(conn, conn:yield_after())
end

-- Slot waits: a request that found no free connection sleeps on its pool's
-- semaphore, which a return in this worker posts (one waiter per return),
-- for at most SLOT_LOOK before it tries again: returns it cannot hear of
-- (another worker under max_total_connections, a thread, the garbage
-- collector) are caught that way, 5 ms late at most: a waiter costs 200
-- looks a second instead of the 1000 of polling.  Without semaphores it polls.
local SLOT_LOOK = 0.005
local slot_semas = {}                 -- pool name -> ngx.semaphore

local function slot_sema(name)
  if not semaphores() then return nil end
  local sema = slot_semas[name]
  if not sema then
    sema = semaphore.new(0)
    slot_semas[name] = sema
  end
  return sema
end

-- Waiters first, as QueuePool's queue is: a checkout that finds others of
-- this worker waiting for the pool, or a returned connection on its way to
-- one of them, waits behind them instead of taking the connection first.
-- Else a steady stream of new requests takes every return, and the waiters
-- lose again and again until pool_timeout (bench/results/scale.md).  A
-- hand-off is a post to a waiter that has not run yet; it counts for at
-- most SLOT_LOOK, so that one whose request was killed meanwhile holds
-- nobody up for longer.
local handoffs, handoff_until = {}, {}          -- pool name -> posts not yet taken, until when

-- After a return: wake one waiter of that pool, if any (count() < 0 is the
-- number of waiters, kept by nginx even for waiters that were killed).
local function slot_freed(name)
  local sema = slot_semas[name]
  if sema and sema:count() < 0 then
    sema:post(1)
    handoffs[name] = (handoffs[name] or 0) + 1
    handoff_until[name] = now() + SLOT_LOOK
  end
end

-- M.queued(name, at) -> true when a new checkout of pool name must wait
-- behind this worker's waiters (at: now(), the caller's clock reading).
function M.queued(name, at)
  local sema = slot_semas[name]
  if sema == nil then return false end
  if sema:count() < 0 then return true end
  return (handoffs[name] or 0) > 0 and at < handoff_until[name]
end
local queued = M.queued

local refill_if_due                   -- below: min_idle's timer
-- A worker shutting down (nginx -s reload) opens nothing more: a connect in
-- flight at its exit would be a socket nginx finds left open.
local function exiting()
  return ngx.worker and ngx.worker.exiting and ngx.worker.exiting()
end

local raw_close, raw_invalidate, raw_ping = methods.close, methods.invalidate, methods.ping
local find = core.find
function methods.close(conn)
  local name = conn:pool_name()
  if exiting() then
    -- A worker shutting down has closed its idle connections already
    -- (nginx does that once); one pooled now would be a socket left open.
    raw_invalidate(conn)
    return slot_freed(name)
  end
  raw_close(conn)
  if phase_now() == "init" then         -- the master keeps no connection
    local pool = find(name)
    if pool then pool:dispose() end
  end
  slot_freed(name)
  refill_if_due(conn, name)
end
-- conn:ping() yields for the answer, as a statement does (raises where
-- nginx cannot yield; blocks in init_by_lua).
local ping_send, ping_collect = methods._ping_send, methods._ping_collect
function methods.ping(conn, ...)
  if not can_yield("conn:ping()") then return raw_ping(conn, ...) end
  local ok, msg, err = ping_send(conn)
  if not ok then return nil, msg, err end
  local sema = sema_of(conn)
  local look = 0
  while true do
    ok, msg, err = ping_collect(conn)
    if ok ~= false then return ok, msg, err end
    look = await_socket(sema, look)
  end
end
function methods.invalidate(conn)
  local name = conn:pool_name()
  raw_invalidate(conn)
  slot_freed(name)
  refill_if_due(conn, name)
end

-- A connect's limit: connect_timeout (0: none, as in libpq), never past
-- deadline (core.now() seconds), the checkout's; and whether the checkout's
-- deadline is the one that ends it.
local function connect_limit(pool, deadline)
  deadline = deadline or math.huge           -- a timer's refill: connect_timeout alone
  local _, _, connect_timeout = pool:timing()
  local limit = connect_timeout > 0 and now() + connect_timeout or math.huge
  if deadline < limit then return deadline, true end
  return limit, false
end

-- nil, msg, err for a connect that reached its limit: kind "timeout" when
-- it was the checkout's deadline (counted), else "connect".
local function gave_up(pool, name, checkout_ends)
  if checkout_ends then return pool:timed_out(true) end
  local _, _, connect_timeout = pool:timing()
  local msg = ("could not connect: no answer within connect_timeout (%g s)"):format(connect_timeout)
  return nil, msg, setmetatable({ kind = "connect", message = msg, engine = name }, core.Error)
end

-- No host name is looked up on the event loop (csrc/resolve.h): before a
-- connect may start, the pool's DSN names must be in the process's cache,
-- filled by lookup threads; this yields until they answer, the lookup fails
-- (kind "connect") or the limit passes.  Once ready, a pool asks again at
-- most every RESOLVED_FOR seconds (the ask also refreshes an old entry in
-- the background; connects in between use the cache).
local RESOLVED_FOR = 1
local resolved_until = {}             -- pool name -> core.now() of the next ask
local function resolved(pool, deadline)
  local name = pool:name()
  if (resolved_until[name] or 0) > now() then return true end
  local limit, checkout_ends = connect_limit(pool, deadline)
  local look = 0
  while true do
    local ready, msg, err = pool:resolve_ahead()
    if ready then
      resolved_until[name] = now() + RESOLVED_FOR
      return true
    end
    if ready == nil then return nil, msg, err end
    if now() >= limit then return gave_up(pool, name, checkout_ends) end
    look = look + 1
    sleep(delay_for(look))
  end
end

-- M.resolve_soon(pool): starts the lookups of pool's host names now, on
-- their threads, so that the first checkout finds them done (a worker's
-- start).  Not in the master: threads there would not survive its fork.
function M.resolve_soon(pool)
  if phase_now() ~= "init" then pool:resolve_ahead() end
end

-- Waits for the pre-ping of an idle connection that try_connect(since,
-- true) sent instead of waiting for its answer on the event loop: the
-- request yields until the socket is ready, at most until the ping's time
-- is up (ping_timeout, within the checkout's deadline), when the core
-- replaces the connection (conn:connect_step(), then a connect).  Returns
-- connect_step's answer once the ping is over.
local function await_ping(conn)
  local sema = sema_of(conn)
  local look = 0
  while true do
    local ready, msg, err = conn:connect_step()
    local left = conn:_ping_left()
    if ready ~= false or not left then return ready, msg, err end
    if sema then
      sema:wait(math.min(left, WAKE_CAP))
    else
      look = look + 1
      sleep(delay_for(look))
    end
  end
end

-- Drives a connect that try_connect(since, true) left to us, yielding
-- between steps, for at most connect_timeout and never past deadline (the
-- checkout's): then it fails with kind "timeout", counted.  A pre-ping
-- comes first, when that is what it left (await_ping).
local function finish_connect(pool, conn, deadline)
  if conn:_ping_left() then
    local ready, msg, err = await_ping(conn)
    if ready then return conn end
    if ready == nil then return nil, msg, err end
  end
  local limit, checkout_ends = connect_limit(pool, deadline)
  local look = 0
  while true do
    local ready, msg, err = conn:connect_step()
    if ready then return conn end
    if ready == nil then return nil, msg, err end
    if now() >= limit then
      local name = conn:pool_name()
      conn:close()                        -- counted as a failed connect
      return gave_up(pool, name, checkout_ends)
    end
    look = look + 1
    sleep(delay_for(look))
  end
end

-- One try: a checked-out Conn, or nil, msg, err (kind "again": no slot now).
local function try_once(pool, since, deadline)
  local ok, msg, err = resolved(pool, deadline)
  if not ok then return nil, msg, err end
  local conn
  conn, msg, err = pool:try_connect(since, true)
  if conn and msg == "connecting" then return finish_connect(pool, conn, deadline) end
  return conn, msg, err
end

-- M.try_checkout(pool) -> Conn | nil, msg, err (kind "again": every
-- connection is busy): a checkout that never queues for a slot, but yields
-- for what it needs (a name lookup, a connect, a pre-ping) within the
-- checkout's budget; engine:health()'s.  Blocks in init_by_lua, raises
-- where nginx cannot yield.
function M.try_checkout(pool)
  if not can_yield("a checkout") then return pool:try_connect() end
  local _, _, _, budget = pool:timing()
  return try_once(pool, nil, now() + budget)
end

-- min_idle inside nginx: after a return that lost a connection, a timer
-- opens what min_idle misses, one yielding connect at a time, each after a
-- random pause (docs/decisions.md); one timer per pool at a time.
local refilling = {}
local function refill(premature, pool, name)
  while not premature and not exiting() do
    sleep(math.random() * 0.1)
    if not resolved(pool) then break end  -- a name that does not resolve: counted at checkout
    local conn = pool:refill_start()
    if not conn then break end
    if not finish_connect(pool, conn, math.huge) then   -- within connect_timeout
      break                               -- counted; the next lost connection asks again
    end
    conn:close()                          -- idles it, or hands it to a waiter
  end
  refilling[name] = nil
end
local function start_refill(pool, name)
  if refilling[name] then return end
  -- pcall: init_by_lua (the master, which keeps no connection) has no timers.
  local ok, started = pcall(ngx.timer.at, 0, refill, pool, name)
  if ok and started then refilling[name] = true end
end
function refill_if_due(conn, name)
  if refilling[name] or not conn:refill_due() then return end
  local pool = core.find(name)
  if pool then start_refill(pool, name) end
end

-- M.connect(pool) -> Conn | nil, msg, err: a checkout that yields while it
-- waits for a slot and while a new connection is being made.
function M.connect(pool)
  if not can_yield("a checkout") then return pool:connect() end
  local since = now()
  local name = pool:name()
  local pool_timeout, _, _, budget = pool:timing()
  local work_deadline = since + budget          -- connects: the core's budget
  local conn, msg, err
  if not queued(name, since) then
    conn, msg, err = try_once(pool, nil, work_deadline)
    if conn or err.kind ~= "again" then return conn, msg, err end
  end
  local deadline = since + pool_timeout
  pool:note_wait()
  local sema = slot_sema(name)
  local look = 0
  repeat
    look = look + 1
    if sema then
      if sema:wait(SLOT_LOOK) and (handoffs[name] or 0) > 0 then   -- posted: a hand-off taken
        handoffs[name] = handoffs[name] - 1
      end
    else
      sleep(delay_for(look))
    end
    conn, msg, err = try_once(pool, since, work_deadline)
    if conn or err.kind ~= "again" then return conn, msg, err end
  until now() >= deadline
  return pool:timed_out()
end

-- ===== engine:query through LuaJIT's FFI ====================================
--
-- The request path of DESIGN.md's "Inside nginx": checkout, send, wait,
-- read, build rows and return through dbpool.fastpath's FFI calls, which
-- LuaJIT compiles, instead of the classic C API calls, which stop its
-- traces.  It takes only an idle connection that needs nothing more (no
-- connect, no name lookup); anything else goes the classic way, which
-- gives the same results and errors (M.query's returns).  DBPOOL_FFI=0 in
-- the environment (an `env` directive under nginx) turns it off, for
-- comparison.
local fast = os.getenv("DBPOOL_FFI") ~= "0" and require "dbpool.fastpath" or nil
local SLOW = fast and fast.SLOW or {}
local CONNECTED = {}
M.SLOW, M.CONNECTED = SLOW, CONNECTED
M.fast_queries = 0                    -- statements the FFI path ran (the specs read it)

if fast then
  local api, take_call, put_call = fast.api, fast.take_call, fast.put_call
  local fast_info, plain_sql, fast_params = fast.info, fast.plain_sql, fast.params
  local fast_rows, fast_fail = fast.rows, fast.fail
  local OK, AGAIN, PENDING = fast.OK, fast.AGAIN, fast.PENDING
  local why = ffi.new("const char *[1]")

  local function ffi_watch(c, next_id, addr)
    local id = api.ngx_watch(c, next_id, ffi.cast("void *", addr), why)
    if id < 0 then error("dbpool: nginx socket watch: " .. ffi.string(why[0])) end
    return id > 0 and id or nil
  end

  -- The statement's result, waiting as wait_result does.
  local function collect_fast(c, info)
    local st = api.collect(c, info.yield_after_ns)
    if st ~= AGAIN then return st end
    core._ffi_note_site(c)               -- a request killed while it waits is a leak
    local sema = sema_by(ffi_watch, c)
    local look = 0
    repeat
      look = await_socket(sema, look)
      st = api.collect(c, 0)
    until st ~= AGAIN
    return st
  end

  -- A checkout that must connect first: the reserved slot becomes a Conn
  -- that the classic path drives (finish_connect), then CONNECTED, conn.
  local function connect_reserved(pool, call)
    local since = now()
    local conn = core._ffi_adopt(call.c)
    put_call(call)
    local _, _, _, budget = pool:timing()
    local msg, err
    conn, msg, err = finish_connect(pool, conn, since + budget)
    if not conn then return nil, msg, err end
    return CONNECTED, conn
  end

  -- M.query(pool, sql, ...) -> rows | nil, msg, err | SLOW (run the
  -- classic path) | CONNECTED, conn (run the statement on conn, classic).
  function M.query(pool, sql, ...)
    if not YIELDABLE[phase_now()] or exiting() then return SLOW end
    local info = fast_info(pool)
    if not info or info.slow or not plain_sql(sql) then return SLOW end
    local at = api.now()
    if (resolved_until[info.name] or 0) <= at or queued(info.name, at) then
      return SLOW                        -- a lookup to make, or waiters to go first
    end
    local n = select("#", ...)
    local call = take_call(info)
    if n > 0 and not fast_params(call, n, ...) then
      put_call(call)
      return SLOW
    end
    local c = call.c
    local st = api.checkout(c, false)
    if st ~= OK then
      if st == PENDING then return connect_reserved(pool, call) end
      if st == AGAIN then
        put_call(call)
        return SLOW                      -- the classic path waits for a slot
      end
      local _, msg, err = fast_fail(info, call)
      put_call(call)
      return nil, msg, err
    end
    M.fast_queries = M.fast_queries + 1
    st = api.send(c, sql, n)
    if st == OK then st = collect_fast(c, info) end
    if api.has_notices(c) then core._ffi_log_notices(c) end
    local name = info.name
    if exiting() then                    -- as conn:close then: nothing pooled
      api.invalidate(c)
      slot_freed(name)
    else
      local refill = api.release(c)      -- before the rows are built, as pool:query
      slot_freed(name)
      if refill and not refilling[name] then start_refill(pool, name) end
    end
    local rows, msg, err
    if st == OK then rows = fast_rows(info, call) else rows, msg, err = fast_fail(info, call) end
    put_call(call)
    return rows, msg, err
  end
else
  function M.query() return SLOW end
end

-- ===== min_idle, from timers ===============================================
--
-- Under nginx no pool connects for min_idle on its own (a blocking connect
-- in the master, or on a worker's event loop): core.refill_by_host() above.
-- Each worker tops its pools up from a timer instead, with the yielding
-- connect: the first one at once, then every REFILL_EVERY seconds.
local REFILL_EVERY = 1
local warmed = {}                    -- pool name -> the pool this worker's timer keeps warm

-- Up to min_idle connections checked out (idle ones first, then new ones,
-- never waiting) and all returned: the pool then holds min_idle idle.
-- Each run schedules the next (not ngx.timer.every): the chain ends when the
-- engine is removed or replaced, and no timer keeps its pool alive.
local function warm(premature, pool, min_idle)
  local name = pool:name()
  if premature or exiting() or warmed[name] ~= pool then return end
  if pool:checkedin() < min_idle then
    local held = {}
    for i = 1, min_idle do
      local conn = try_once(pool)
      if not conn then break end
      held[i] = conn
    end
    for _, conn in ipairs(held) do conn:close() end
  end
  local ok, err = ngx.timer.at(REFILL_EVERY, warm, pool, min_idle)
  if not ok then
    warmed[name] = nil
    ngx.log(ngx.WARN, "dbpool: engine ", name, ": no timer for min_idle: ", err)
  end
end

-- M.keep_warm(pool, min_idle): from this worker's next turn of the event
-- loop on, pool is topped up to min_idle idle connections by a timer.  Not
-- in the master (its timers do not run): returns false there.
function M.keep_warm(pool, min_idle)
  local name = pool:name()
  if not (min_idle and min_idle > 0) or warmed[name] or phase_now() == "init" then
    return false
  end
  warmed[name] = pool
  local ok, err = ngx.timer.at(0, warm, pool, min_idle)
  if not ok then
    warmed[name] = nil
    ngx.log(ngx.WARN, "dbpool: engine ", name, ": no timer for min_idle: ", err)
  end
  return ok
end

-- ===== pool_size = "auto", from timers ======================================
--
-- No thread runs the sizing steps inside nginx (core.refill_by_host()):
-- each worker runs its pools' from a timer every auto.interval, the first
-- at once.  One decision per instance (csrc/autosize.h): the worker that
-- holds the instance's lease (csrc/shstats.c; it expires, so a dead or
-- reloaded worker hands over) decides the instance's target from every
-- worker's numbers, counts and logs it once; every worker, at its step,
-- sizes its copy of the pool to its share.  Growing goes through the
-- refill timer above.
local sized = {}                     -- pool name -> the pool this worker's timer sizes
local worker_id = ngx.worker and ngx.worker.id or function() return nil end

-- Each step schedules the next, as warm does: removing the engine ends it.
local function size_step(premature, pool, interval)
  local name = pool:name()
  if sized[name] ~= pool then return end
  -- A worker that stops (nginx -s reload) hands the lease on at once.
  if premature or exiting() then return pool:autosize_leave() end
  if pool:autosize_step(worker_id()) then start_refill(pool, name) end
  local ok, err = ngx.timer.at(interval, size_step, pool, interval)
  if not ok then
    sized[name] = nil
    ngx.log(ngx.WARN, "dbpool: engine ", name, ": no timer for pool_size = \"auto\": ", err)
  end
end

-- M.keep_sized(pool): from this worker's next turn of the event loop on,
-- pool (pool_size = "auto") is sized by a timer.  Not in the master (its
-- timers do not run), nor for other pools: returns false then.
function M.keep_sized(pool)
  local name, interval = pool:name(), pool:autosize_interval()
  if interval <= 0 or sized[name] or phase_now() == "init" then return false end
  sized[name] = pool
  local ok, err = ngx.timer.at(0, size_step, pool, interval)
  if not ok then
    sized[name] = nil
    ngx.log(ngx.WARN, "dbpool: engine ", name, ": no timer for pool_size = \"auto\": ", err)
  end
  return ok
end

-- ===== One view per instance ===============================================
--
-- An engine made in the master gets a table in shared memory (csrc/shstats.c)
-- that every worker publishes its numbers to, every PUBLISH_EVERY seconds
-- and before it reads: dbpool.metrics(), engine:stats() and engine:health()
-- in any worker then answer for all of them.  An engine made in a worker
-- gets its table from the instance arena (csrc/arena.h), which the master
-- maps here, when it loads dbpool in init_by_lua (again at each reload: the
-- next generation of workers gets a fresh one): every worker declaring the
-- same engine with the same options shares one table.
local PUBLISH_EVERY = 1

if phase_now() == "init" then core.arena_open() end

-- M.share(pool) -> nil | why: pool's numbers go to the instance's table
-- (made now if none: in the master, before fork, every worker's; in a
-- worker, the instance arena's).  why, a sentence, when the table is this
-- worker's alone (no arena: dbpool not loaded in the master; arena full).
function M.share(pool)
  local _, why = pool:share_stats()
  if phase_now() == "init" then return nil end   -- the master: its table is the instance's
  -- In a worker, its entry now: a pool made here counts from zero, and a
  -- first publish later would take what it counted meanwhile as its base.
  -- (Not in the master: ngx.worker.id() may say 0 there, and its entry
  -- would pass for a live process of worker 0.)
  local id = worker_id()
  if id ~= nil then pool:publish_stats(id) end
  return why
end

local function publish_all()
  local id = worker_id()
  if id == nil then return end                     -- the master: no worker
  -- Also when premature: nginx is stopping this worker, and these are its last.
  for _, pool in ipairs(core.pools()) do pool:publish_stats(id) end
end

-- M.instance_rows(pool) -> per-worker stats rows, or nil: not in a worker,
-- or a pool without a table (made in a worker, or outside nginx).
function M.instance_rows(pool, total)
  local id = worker_id()
  if id == nil or not pool:publish_stats(id) then return nil end
  return pool:worker_stats(total)
end

-- M.start_publishing(): in a worker, once: its numbers reach the table
-- every PUBLISH_EVERY seconds, and once more when nginx stops it.
local publishing = false
function M.start_publishing()
  if publishing or worker_id() == nil then return end
  publishing = true
  publish_all()
  local ok, err = ngx.timer.every(PUBLISH_EVERY, publish_all)
  if not ok then ngx.log(ngx.WARN, "dbpool: no timer to publish this worker's numbers: ", err) end
end

-- M.forget(name): the engine was removed; its timer stops.
function M.forget(name)
  warmed[name] = nil
  sized[name] = nil
end

-- The phase the code runs in, or nil (a worker thread's VM).
M.phase = phase_now

return M
