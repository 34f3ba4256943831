-- SQLAlchemy QueuePool semantics, observed from Lua against the real server.
-- (Threads waiting on each other are covered in spec/c/test_pool.c.)
local helper = require "helper"
local monotime = require("system").monotime

local function take(engine, n)
  local held = {}
  for i = 1, n do held[i] = assert(engine:connect()) end
  return held
end

local function give_back(held)
  for _, c in ipairs(held) do c:close() end
end

describe("QueuePool semantics", function()
  it("counts like SQLAlchemy, overflow negative below pool_size", function()
    local e = helper.engine { pool_size = 5, max_overflow = 10 }
    local p = e.pool
    assert.are.same({ 5, 0, 0, -5 }, { p:size(), p:checkedin(), p:checkedout(), p:overflow() })
    local held = take(e, 2)
    assert.are.same({ 0, 2, -3 }, { p:checkedin(), p:checkedout(), p:overflow() })
    give_back(held)
    assert.are.same({ 2, 0, -3 }, { p:checkedin(), p:checkedout(), p:overflow() })
    assert.are.equal(
      "Pool size: 5  Connections in pool: 2 Current Overflow: -3 Current Checked out connections: 0",
      p:status())
    assert.are.equal("QueuePool", p:class())
  end)

  it("closes overflow connections on return while the idle set is full", function()
    local e = helper.engine { pool_size = 2, max_overflow = 2 }
    local held = take(e, 4)
    assert.are.equal(2, e.pool:overflow())
    assert.are.equal(4, helper.settled_backends(e.name, 4))
    give_back(held)
    assert.are.equal(2, e.pool:checkedin())
    assert.are.equal(0, e.pool:overflow())
    assert.are.equal(2, helper.settled_backends(e.name, 2))
  end)

  it("fails a checkout beyond capacity with SQLAlchemy's sentence and the live state", function()
    local e = helper.engine { pool_size = 1, max_overflow = 1, pool_timeout = 0.25 }
    local held = take(e, 2)
    local t0 = monotime()
    local conn, _, err = e:connect()
    local waited = monotime() - t0
    assert.is_nil(conn)
    assert.are.equal("timeout", err.kind)
    assert.are.equal(
      "QueuePool limit of size 1 overflow 1 reached, connection timed out, timeout 0.25",
      err.message)
    assert.are.equal(err.message, tostring(err))
    assert.are.equal("total=2, in_use=2, idle=0, waiting=0", err.detail)
    assert.is_true(waited >= 0.24, "waited " .. waited)
    assert.is_true(waited < 1.0, "waited " .. waited)
    assert.are.same({ 0, 2, 1 }, { e.pool:checkedin(), e.pool:checkedout(), e.pool:overflow() })
    assert.are.equal(1, e:stats().timeouts)
    give_back(held)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("fails at once with pool_timeout = 0", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0 }
    local held = take(e, 1)
    local conn, _, err = e:connect()
    assert.is_nil(conn)
    assert.are.equal(
      "QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.00", err.message)
    give_back(held)
  end)

  it("is unbounded with max_overflow = -1", function()
    local e = helper.engine { pool_size = 1, max_overflow = -1, pool_timeout = 0 }
    local held = take(e, 8)
    assert.are.equal(7, e.pool:overflow())
    give_back(held)
    assert.are.equal(1, e.pool:checkedin())
    assert.are.equal(1, helper.settled_backends(e.name, 1))
  end)

  it("has no limit with pool_size = 0, and keeps what is returned", function()
    local e = helper.engine { pool_size = 0, max_overflow = 0, pool_timeout = 0 }
    local held = take(e, 6)
    assert.are.equal(0, e.pool:size())
    assert.are.equal(0, e.pool:overflow())        -- SQLAlchemy 2.x: 0 without a size limit
    assert.are.equal(6, e.pool:checkedout())
    assert.are.equal("Pool size: 0  Connections in pool: 0 Current Overflow: 0 "
      .. "Current Checked out connections: 6", e.pool:status())
    give_back(held)
    assert.are.equal(6, e.pool:checkedin())
    assert.are.equal(0, e.pool:overflow())
  end)

  local function pids_in_checkout_order(use_lifo)
    local e = helper.engine { pool_size = 2, max_overflow = 0, use_lifo = use_lifo }
    local a, b = assert(e:connect()), assert(e:connect())
    local first, second = a:backend_pid(), b:backend_pid()
    a:close()   -- returned first
    b:close()   -- returned last
    local c = assert(e:connect())
    local got = c:backend_pid()
    c:close()
    return got, first, second
  end

  it("reuses the connection returned longest ago by default (FIFO)", function()
    local got, first = pids_in_checkout_order(false)
    assert.are.equal(first, got)
  end)

  it("reuses the most recently returned connection with use_lifo", function()
    local got, _, second = pids_in_checkout_order(true)
    assert.are.equal(second, got)
  end)

  it("dispose starts a fresh pool: checked-out connections no longer count (SQLAlchemy's Engine.dispose)", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.5 }
    local old = assert(e:connect())
    local old_pid = old:backend_pid()
    e:dispose()
    assert.are.same({ 0, 0, -1 }, { e.pool:checkedout(), e.pool:checkedin(), e.pool:overflow() })
    local fresh = assert(e:connect())              -- no timeout: the retired one is not counted
    local fresh_pid = fresh:backend_pid()
    assert.are_not.equal(old_pid, fresh_pid)
    assert.are.equal(1, e.pool:checkedout())
    old:close()                                    -- retired: closed, counts untouched
    assert.are.same({ 1, 0 }, { e.pool:checkedout(), e.pool:checkedin() })
    fresh:close()
    assert.are.same({ 0, 1 }, { e.pool:checkedout(), e.pool:checkedin() })
    assert.are.equal(1, helper.settled_backends(e.name, 1))
    local again = assert(e:connect())
    assert.are.equal(fresh_pid, again:backend_pid())   -- the new pool keeps what it made
    again:close()
  end)

  it("dispose closes idle connections and retires checked-out ones on return", function()
    local e = helper.engine { pool_size = 3 }
    local held = take(e, 3)
    local keep = table.remove(held)
    local old_pid = keep:backend_pid()
    give_back(held)
    assert.are.equal(2, e.pool:checkedin())
    e:dispose()
    assert.are.equal(0, e.pool:checkedin())
    assert.are.equal(1, helper.settled_backends(e.name, 1))   -- only the one still checked out
    keep:close()
    assert.are.equal(0, helper.settled_backends(e.name, 0))
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(-3, e.pool:overflow())
    local fresh = assert(e:connect())              -- still usable, with a new connection
    assert.are_not.equal(old_pid, fresh:backend_pid())
    fresh:close()
  end)

  it("replaces a connection older than pool_recycle at checkout", function()
    local e = helper.engine { pool_size = 1, pool_recycle = 0.2 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    c:close()
    c = assert(e:connect())
    assert.are.equal(pid, c:backend_pid())         -- young enough: reused
    c:close()
    require("system").sleep(0.3)
    c = assert(e:connect())
    assert.are_not.equal(pid, c:backend_pid())
    c:close()
    assert.are.equal(1, e:stats().recycles)
    assert.are.equal(1, helper.settled_backends(e.name, 1))
  end)

  it("rotates a connection after max_queries statements", function()
    local e = helper.engine { pool_size = 1, max_queries = 2 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:query("SELECT 1"))
    assert(c:query("SELECT 2"))
    c:close()
    c = assert(e:connect())
    assert.are_not.equal(pid, c:backend_pid())
    c:close()
  end)
end)
