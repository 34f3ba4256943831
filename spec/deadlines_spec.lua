-- Every wait has a deadline (DESIGN.md): each wait dbpool makes for a
-- caller, against a server that stops answering, finishes within its bound
-- plus one second, and leaves every count consistent.  A backend is stopped
-- with SIGSTOP (as a half-open TCP connection looks) and always resumed,
-- whatever the spec's outcome; a listener that accepts TCP and never answers
-- stands for a server that hangs in the connect.
local helper = require "helper"
local socket = require "socket"
local sys = require "system"

local scale = helper.time_scale

-- Seconds fn takes, and what it returned.
local function timed(fn)
  local t0 = sys.monotime()
  local r = table.pack(fn())
  return sys.monotime() - t0, table.unpack(r, 1, r.n)
end

-- Stops backend pid for the rest of the spec: finally() resumes it even when
-- the spec fails (a stopped backend would hold the server's slot forever).
local function stop_backend(pid)
  assert(type(pid) == "number" and pid > 0, "no backend pid")
  finally(function() os.execute("kill -CONT " .. pid .. " 2>/dev/null") end)
  assert(os.execute("kill -STOP " .. pid))
end

-- The engine's stats hold want (a subset, by name) and its checkouts all
-- came back: nothing in use, nobody waiting.
local function assert_settled(e, want)
  local s, got = e:stats(), {}
  want = want or {}
  want.checkedout, want.waiting = 0, 0
  for k in pairs(want) do got[k] = s[k] end
  assert.are.same(want, got)
end

-- A wait of took seconds ended within bound plus one second (scaled).
local function assert_within(took, bound)
  assert.is_true(took < bound + 1 * scale, ("took %.3f s, bound %.3f s"):format(took, bound))
end

-- The backend of an idle connection of e, which stays in the pool.
local function idle_backend(e)
  local c = assert(e:connect())
  local pid = c:backend_pid()
  c:close()
  return pid
end

describe("a stopped backend", function()
  -- Through PgBouncer conn:backend_pid() is PgBouncer's own number, not a
  -- process; stopping PgBouncer itself stops every connection, which the
  -- listener specs below already cover for the connect.
  if helper.via_pgbouncer then
    it("cannot be aimed at through PgBouncer (backend pids are PgBouncer's)", function() end)
    return
  end

  it("under pre-ping: the checkout replaces it within ping_timeout", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_pre_ping = true,
                              pre_ping_bypass = 0, pool_timeout = 2, connect_timeout = 2,
                              ping_timeout = 0.5 }
    local pid = idle_backend(e)
    stop_backend(pid)
    local took, c, msg = timed(function() return e:connect() end)
    assert(c, msg)
    assert.are_not.equal(pid, c:backend_pid())
    assert(c:query("SELECT 1"))
    c:close()
    assert_within(took, 0.5)
    assert_settled(e, { ping_timeouts = 1, pre_ping_failures = 1, timeouts = 0, checkedin = 1 })
  end)

  it("under pre-ping: pool_timeout bounds the whole checkout, ping included", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_pre_ping = true,
                              pre_ping_bypass = 0, pool_timeout = 2, connect_timeout = 2 }
    local pid = idle_backend(e)
    stop_backend(pid)
    -- ping_timeout (5) is longer than the checkout: the checkout's end cuts it.
    local took, c, msg, err = timed(function() return e:connect() end)
    assert_within(took, 2)
    if c then                               -- a new connection made it in time
      assert.are_not.equal(pid, c:backend_pid())
      c:close()
    else
      assert.are.equal("timeout", err.kind, msg)
      assert.are.equal(e.name, err.engine)
      assert.are.equal(1, e:stats().timeouts)
    end
    assert_settled(e, { ping_timeouts = 1 })
    os.execute("kill -CONT " .. pid)
    c = assert(e:connect())                  -- the pool works on
    assert(c:query("SELECT 1"))
    c:close()
    assert_settled(e)
  end)

  it("at the reset on return: close() returns within reset_timeout and frees the slot", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, reset_timeout = 0.5 }
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    assert(c:query("SELECT 1"))
    local pid = c:backend_pid()
    stop_backend(pid)
    local took = timed(function() c:close() end)
    assert_within(took, 0.5)
    assert_settled(e, { reset_timeouts = 1, checkedin = 0 })
    c = assert(e:connect())                  -- the slot is free at once
    assert.are_not.equal(pid, c:backend_pid())
    c:close()
  end)

  it("under engine:health(): the live check gives up at ping_timeout", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, ping_timeout = 0.5 }
    local pid = idle_backend(e)
    stop_backend(pid)
    local took, h = timed(function() return e:health() end)
    assert_within(took, 0.5)
    assert.are.equal("down", h.status)
    assert.matches("ping_timeout", table.concat(h.reasons, "; "))
    assert_settled(e, { ping_timeouts = 1, checkedin = 0 })
  end)

  it("under a query: query_timeout cancels it and closes the Conn", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, query_timeout = 0.5 }
    local c = assert(e:connect())
    stop_backend(c:backend_pid())
    local took, rows, msg, err = timed(function() return c:query("SELECT 1") end)
    assert.is_nil(rows)
    assert_within(took, 0.5)
    assert.are.equal("query_timeout", err.kind, msg)
    assert_settled(e)                        -- the slot is free at once
    local _, _, later = c:query("SELECT 1")
    assert.are.equal("closed", later.kind)
    assert.are.equal(1, e:stats().query_timeouts)
  end)
end)

describe("query_timeout", function()
  it("cancels a statement that runs too long; later use gives kind closed", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, query_timeout = 0.3 }
    local c = assert(e:connect())
    local took, rows, msg, err = timed(function() return c:query("SELECT pg_sleep(5)") end)
    assert.is_nil(rows)
    assert_within(took, 0.3)
    assert.are.equal("query_timeout", err.kind, msg)
    assert.are.equal(e.name, err.engine)
    assert_settled(e)
    local _, _, later = c:exec("SELECT 1")
    assert.are.equal("closed", later.kind)
    assert.are.equal(1, e:stats().query_timeouts)
    assert(e:query("SELECT 1"))              -- the pool goes on
    assert_settled(e)
  end)

  it("conn:set_query_timeout holds for one checkout", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    c:set_query_timeout(0.3)
    local took, rows, msg, err = timed(function() return c:query("SELECT pg_sleep(5)") end)
    assert.is_nil(rows)
    assert_within(took, 0.3)
    assert.are.equal("query_timeout", err.kind, msg)
    assert_settled(e)
    local _, _, later = c:query("SELECT 1")
    assert.are.equal("closed", later.kind)
    assert.are.equal(1, e:stats().query_timeouts)
    c = assert(e:connect())                  -- a new checkout: no timeout of its own
    assert(c:query("SELECT pg_sleep(0.4)"))
    c:close()
    assert.are.equal(1, e:stats().query_timeouts)
  end)
end)

describe("a server that accepts and never answers", function()
  local listener, dsn
  before_each(function()
    listener = assert(socket.bind("127.0.0.1", 0))   -- the kernel accepts; nobody answers
    local _, port = listener:getsockname()
    dsn = ("postgresql://postgres@127.0.0.1:%d/postgres"):format(port)
  end)
  after_each(function() listener:close() end)

  it("fails the checkout within pool_timeout, not connect_timeout", function()
    local e = helper.engine { dsn = dsn, pool_size = 1, max_overflow = 0, pool_timeout = 1 }
    local took, c, msg, err = timed(function() return e:connect() end)
    assert.is_nil(c)
    assert_within(took, 1)
    assert.are.equal("timeout", err.kind, msg)
    assert.matches("pool_timeout", msg)
    assert_settled(e, { timeouts = 1, connect_failures = 1, total = 0 })
  end)

  it("gives each attempt connect_timeout, retrying within pool_timeout", function()
    local e = helper.engine { dsn = dsn, pool_size = 1, max_overflow = 0, pool_timeout = 3,
                              connect_timeout = 0.5, retry = { attempts = 3, base = 0.05, max = 0.1 } }
    local took, c, msg, err = timed(function() return e:connect() end)
    assert.is_nil(c)
    assert_within(took, 1.5 + 0.2)
    assert.is_true(took >= 1.5, ("took %.3f s"):format(took))
    assert.are.equal("connect", err.kind, msg)
    assert.matches("connect_timeout", msg)
    assert_settled(e, { connect_failures = 3 })
  end)
end)

describe("min_idle", function()
  it("is refilled off the caller's path: close() opens nothing, a background thread does", function()
    local e = helper.engine { pool_size = 3, max_overflow = 0, min_idle = 3 }
    assert.are.equal(3, e.pool:checkedin())
    local before = e:stats().connects
    local c = assert(e:connect())
    c:invalidate()
    assert.are.equal(before, e:stats().connects)     -- nothing opened by the caller
    local c2 = assert(e:connect())
    c2:close()
    assert.are.equal(before, e:stats().connects)
    local deadline = sys.monotime() + 3 * scale
    while e.pool:checkedin() < 3 and sys.monotime() < deadline do sys.sleep(0.01) end
    assert.are.equal(3, e.pool:checkedin())
    assert_settled(e, { connects = before + 1 })
  end)
end)
