-- Recovery from real faults: killed backends, a restarted or stopped server,
-- a server turned read-only.  Every spec ends with the counts consistent and
-- the engine's full capacity usable again.
local helper = require "helper"
local sys = require "system"

-- Every connection of e can be checked out at once, and each runs a query.
local function assert_full_capacity(e, capacity)
  local held = {}
  for i = 1, capacity do
    held[i] = assert(e:connect())
    assert(held[i]:query("SELECT 1"))
  end
  for _, c in ipairs(held) do c:close() end
  assert.are.equal(0, e.pool:checkedout())
end

local pids_of = helper.pids_of

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function backend_pid(e)
  return assert(e:query("SELECT pg_backend_pid() AS pid"))[1].pid
end

describe("pool_pre_ping", function()
  it("replaces every killed backend without the caller seeing an error", function()
    local e = helper.engine { pool_size = 3, max_overflow = 0, pool_pre_ping = true }
    local old = pids_of(e, 3)
    helper.disconnect(e, old)
    local killed = set_of(old)
    for _ = 1, 6 do
      local pid = backend_pid(e)                  -- raises on any error
      assert.is_nil(killed[pid], "a killed backend was handed out")
    end
    local st = e:stats()
    assert.are.equal(0, st.query_errors)
    -- The passive socket check finds the first one dead (it read the FATAL
    -- goodbye): a pool-wide invalidation replaces the other two unpinged.
    assert.are.equal(1, st.pre_ping_failures)
    assert.are.equal(3, st.invalidations)
    assert.are.equal(0, st.checkedout)
    assert_full_capacity(e, 3)
  end)

  it("sends no ping inside pre_ping_bypass and one outside it", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_pre_ping = true,
                              pre_ping_bypass = 0.3 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:query("SELECT 'marker'"))
    c:close()
    c = assert(e:connect())                       -- returned just now: no round trip
    assert.are.equal(pid, c:backend_pid())
    c:close()
    assert.are.equal("SELECT 'marker'", helper.last_query(e.name))
    sys.sleep(0.35)
    c = assert(e:connect())                       -- outside the window: the empty query
    c:close()
    assert.are.equal("", helper.last_query(e.name))
    assert.are.equal(0, e:stats().pre_ping_failures)
  end)
end)

describe("without pre-ping", function()
  it("a killed backend fails one query with kind 'query' and its SQLSTATE; the next checkout works", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local pid = pids_of(e, 1)[1]
    helper.disconnect(e, { pid })
    local c = assert(e:connect())
    local rows, _, err = c:query("SELECT 1")
    c:close()
    assert.is_nil(rows)
    assert.are.equal("query", err.kind)
    assert.are.same(helper.disconnect_error,
      { sqlstate = err.sqlstate, severity = err.severity, message = err.message })
    assert.are_not.equal(pid, backend_pid(e))
    local st = e:stats()
    assert.are.same({ 1, 0, 1 }, { st.invalidations, st.checkedout, st.total })
    assert_full_capacity(e, 1)
  end)

  it("one disconnect replaces every connection born before it", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0 }
    local old = pids_of(e, 2)                     -- FIFO: old[1] is handed out next
    helper.disconnect(e, { old[1] })
    local c = assert(e:connect())
    assert.are.equal(old[1], c:backend_pid())
    assert.is_nil((c:query("SELECT 1")))
    c:close()
    -- old[2] is alive, but it was born before the disconnect.
    local fresh = pids_of(e, 2)
    assert.is_nil(set_of(old)[fresh[1]])
    assert.is_nil(set_of(old)[fresh[2]])
    assert.are.equal(2, e:stats().invalidations)
  end)
end)

describe("role = 'primary'", function()
  local function read_only(on)
    local admin = helper.admin()
    local c = assert(admin:connect())
    assert(c:exec("SET default_transaction_read_only = off"))
    assert(c:exec(on and "ALTER SYSTEM SET default_transaction_read_only = on"
      or "ALTER SYSTEM RESET default_transaction_read_only"))
    assert(c:exec("SELECT pg_reload_conf()"))
    c:close()
    -- Every backend applies the reload at its next statement; new sessions
    -- see it once the postmaster has read the file.
    local want = on and "on" or "off"
    local deadline = sys.monotime() + 5
    repeat
      local probe = helper.engine { pool_size = 1, max_overflow = 0 }
      local rows = probe:query("SHOW default_transaction_read_only")
      probe:dispose()
      if rows and rows[1].default_transaction_read_only == want then return end
      sys.sleep(0.05)
    until sys.monotime() > deadline
    error("default_transaction_read_only did not become " .. want)
  end

  it("treats a server that turned read-only as dead, and recovers when it accepts writes again", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0, role = "primary",
                              pool_pre_ping = true, pre_ping_bypass = 0,
                              retry = { attempts = 1 }, breaker = { failures = 0 } }
    local writer = helper.engine { pool_size = 1, max_overflow = 0, role = "primary",
                                   retry = { attempts = 1 }, breaker = { failures = 0 } }
    local old = pids_of(e, 2)
    local held = assert(writer:connect())
    local ok, err = pcall(function()
      read_only(true)
      -- No pre-ping: the write itself fails with 25006 and condemns the pool.
      local rows, _, werr = held:query("CREATE TEMP TABLE t_primary (x int)")
      assert.is_nil(rows)
      assert.are.equal("25006", werr.sqlstate)
      held:close()
      assert.are.equal(1, writer:stats().invalidations)
      -- Pre-ping: SHOW transaction_read_only finds it; the replacement is
      -- refused by libpq (target_session_attrs=read-write).
      local c, _, cerr = e:connect()
      assert.is_nil(c)
      assert.are.equal("connect", cerr.kind)
      assert.matches("read%-only", cerr.message)
      assert.are.equal(1, e:stats().pre_ping_failures)
    end)
    if held and not held:is_closed() then held:close() end
    read_only(false)
    assert(ok, err)
    local fresh = set_of(pids_of(e, 2))
    for _, pid in ipairs(old) do assert.is_nil(fresh[pid]) end
    assert(writer:query("CREATE TEMP TABLE t_primary (x int)"))
    assert_full_capacity(e, 2)
  end)
end)

describe("min_idle", function()
  it("refills with live connections after its connections were replaced", function()
    local e = helper.engine { pool_size = 3, max_overflow = 0, min_idle = 2, pool_pre_ping = true }
    assert.are.equal(2, e.pool:checkedin())
    local old = set_of(pids_of(e, 2))
    local list = {}
    for pid in pairs(old) do list[#list + 1] = pid end
    helper.disconnect(e, list)
    backend_pid(e)                                -- finds one dead; the refill thread refills
    assert.are.equal(2, helper.settled_backends(e.name, 2))
    assert.are.equal(2, e.pool:checkedin())
    for _, pid in ipairs(pids_of(e, 2)) do assert.is_nil(old[pid]) end
    assert.are.equal(0, e:stats().query_errors)
  end)
end)

describe("pool_recycle with recycle_jitter", function()
  it("gives each connection a lifetime fixed at birth, never above pool_recycle", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_recycle = 0.3,
                              recycle_jitter = 0.5 }
    local lifetimes, pid, born = {}, nil, nil
    local deadline = sys.monotime() + 10
    while #lifetimes < 5 and sys.monotime() < deadline do
      -- The staleness check runs at the start of a checkout; the birth is
      -- at the end of the connect that replaced it.
      local before = sys.monotime()
      local c = assert(e:connect())
      if c:backend_pid() ~= pid then
        if pid then lifetimes[#lifetimes + 1] = before - born end
        pid, born = c:backend_pid(), sys.monotime()
      end
      c:close()
      sys.sleep(0.01)
    end
    assert.are.equal(5, #lifetimes)
    local distinct = {}
    for _, life in ipairs(lifetimes) do
      -- 0.3 x (1 - 0.5 u): between 0.15 and 0.3 s, plus at most one sampling step.
      assert.is_true(life >= 0.149 and life <= 0.3 + 0.05, "lifetime " .. life)
      distinct[math.floor(life * 50)] = true
    end
    assert.is_true(next(distinct, next(distinct)) ~= nil, "every lifetime the same: no jitter")
    assert.are.equal(5, e:stats().recycles)
  end)
end)

describe("a pool exhausted by held connections", function()
  it("times the waiter out with the exact message and leaks nothing", function()
    local e = helper.engine { pool_size = 1, max_overflow = 1, pool_timeout = 0.2 }
    local a, b = assert(e:connect()), assert(e:connect())
    local c, _, err = e:connect()
    assert.is_nil(c)
    assert.are.equal("timeout", err.kind)
    assert.are.equal("QueuePool limit of size 1 overflow 1 reached, connection timed out, timeout 0.20",
      err.message)
    assert.are.equal("total=2, in_use=2, idle=0, waiting=0", err.detail)
    a:close(); b:close()
    local st = e:stats()
    assert.are.same({ 1, 0, 1, 0 }, { st.timeouts, st.checkedout, st.checkedin, st.waiting })
    assert_full_capacity(e, 2)
    assert.are.equal(1, helper.settled_backends(e.name, 1))
  end)
end)

describe("the server", function()
  it("restarted mid-use: with pre-ping no error once it is back, and no old connection again", function()
    local e = helper.engine { pool_size = 3, max_overflow = 0, pool_pre_ping = true }
    local old = set_of(pids_of(e, 3))
    local held = assert(e:connect())              -- in use across the restart
    helper.server_ctl("restart")
    local rows, _, err = held:query("SELECT 1")      -- in use: nothing can save it
    held:close()
    assert.is_nil(rows)
    assert.are.equal("query", err.kind)
    for _ = 1, 10 do
      local c = assert(e:connect())
      assert.is_nil(old[c:backend_pid()], "a pre-restart connection was handed out")
      assert(c:query("SELECT 1"))
      c:close()
    end
    assert.are.equal(1, e:stats().query_errors)
    assert.are.equal(0, e.pool:checkedout())
    assert_full_capacity(e, 3)
  end)

  it("stopped: connect errors, then circuit_open at once, then back within cooldown plus a connect", function()
    local cooldown = 1
    local e = helper.engine { dsn = helper.app_dsn, pool_size = 2, max_overflow = 0,
                              -- A ping on every checkout: within pre_ping_bypass
                              -- only the socket is looked at, and the stopped
                              -- server's FIN may not have reached it yet.
                              pool_pre_ping = true, pre_ping_bypass = 0, connect_timeout = 2,
                              retry = { attempts = 2, base = 0.01, max = 0.02 },
                              breaker = { failures = 4, cooldown = cooldown } }
    pids_of(e, 1)
    local ok, failure = pcall(function()
      helper.server_ctl("stop")
      -- Two checkouts of two attempts each open the breaker.
      for _ = 1, 2 do
        local c, _, err = e:connect()
        assert.is_nil(c)
        assert.are.equal("connect", err.kind)
      end
      assert.are.equal("open", e:stats().breaker)
      for _ = 1, 5 do
        local t0 = sys.monotime()
        local c, _, err = e:connect()
        local took = sys.monotime() - t0
        assert.is_nil(c)
        assert.are.equal("circuit_open", err.kind)
        assert.is_true(took < 0.005 * helper.time_scale, "circuit_open took " .. took .. " s")
        assert.matches("circuit breaker open after 4 failed connects in a row", err.message, 1, true)
        assert.matches("last error: could not connect", err.message, 1, true)
        assert.is_nil(err.message:find(helper.app_password, 1, true))
      end
    end)
    helper.server_ctl("start")
    assert(ok, failure)
    local back = sys.monotime()
    local c
    repeat
      c = e:connect()
      if not c then sys.sleep(0.01) end
    until c or sys.monotime() - back > cooldown + 3
    assert.is_truthy(c, "no connection after the server came back")
    assert.is_true(sys.monotime() - back <= cooldown + 1 * helper.time_scale, "recovered late")
    c:close()
    assert.are.equal("closed", e:stats().breaker)
    assert.are.equal(0, e.pool:checkedout())
    assert_full_capacity(e, 2)
  end)
end)
