-- The non-blocking statement path that OpenResty uses (conn:send,
-- conn:send_exec, conn:collect), exercised from plain Lua.
local dbpool = require "dbpool"
local helper = require "helper"
local sys = require "system"

describe("conn:send and conn:collect", function()
  it("return at once while the statement runs, then its rows", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local t0 = sys.monotime()
    assert.is_true(c:send("SELECT pg_sleep(0.2), $1::int AS n", 7))
    assert.is_false(c:collect())                   -- not done, and no wait
    assert.is_false(c:collect(0.01))               -- waited 10 ms: still not done
    assert.is_true(sys.monotime() - t0 < 0.15, "send/collect blocked")
    local rows
    repeat rows = c:collect(0.05) until rows ~= false
    assert.are.equal(7, rows[1].n)
    assert.is_true(sys.monotime() - t0 >= 0.2)
    assert.are.same({ 1 }, { #assert(c:query("SELECT 1")) })   -- usable again, blocking
    c:close()
    assert.are.equal(1, e.pool:checkedin())
  end)

  it("report a server error with its SQLSTATE and keep the connection", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    assert(c:send_exec("SELECT 1; SELECT 1/0; SELECT 2"))
    local rows, err
    repeat rows, _, err = c:collect(0.05) until rows ~= false
    assert.is_nil(rows)
    assert.are.equal("22012", err.sqlstate)
    assert(c:send("SELECT $1::text AS s", "again"))
    repeat rows = c:collect(0.05) until rows ~= false
    assert.are.equal("again", rows[1].s)
    c:close()
    assert.are.same({ 1, 0, 1 }, { e:stats().query_errors, e:stats().invalidations, e.pool:checkedin() })
  end)

  it("refuse a second statement while one runs, and discard a connection returned mid-statement", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:send("SELECT pg_sleep(5)"))
    local ok, why = pcall(c.send, c, "SELECT 1")          -- one statement at a time: misuse
    assert.is_false(ok)
    assert.matches("dbpool.Conn is busy", why, 1, true)
    ok, why = pcall(c.query, c, "SELECT 1")
    assert.is_false(ok)
    assert.matches("one statement at a time", why, 1, true)
    c:close()                                      -- mid-statement: discarded, not pooled
    assert.are.same({ 0, 0 }, { e.pool:checkedin(), e.pool:checkedout() })
    assert.are_not.equal(pid, assert(e:query("SELECT pg_backend_pid() AS p"))[1].p)
    -- ... and the statement was cancelled: its backend is gone long before 5 s.
    assert.are.equal(1, helper.settled_backends(e.name, 1))
  end)

  it("is not installed over conn:query outside nginx", function()
    assert.is_nil(rawget(_G, "ngx"))
    local e = helper.engine {}
    assert.are.equal(1, assert(e:query("SELECT 1 AS one"))[1].one)
    assert.is_nil(package.loaded["dbpool.ngx"])
    assert.is_function(dbpool.engine)
  end)
end)

describe("pool:try_connect(since, true) and conn:connect_step", function()
  local function step_until_ready(c)
    for _ = 1, 5000 do
      local ready, _, err = c:connect_step()
      if ready then return true end
      if ready == nil then return nil, err end
      sys.sleep(0.001)
    end
    error("connect did not finish")
  end

  it("leave a new connection to the caller to connect, and count it as a connect", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c, state = e.pool:try_connect(nil, true)
    assert.are.equal("connecting", state)
    assert.has_error(function() c:query("SELECT 1") end,
      "dbpool.Conn is still connecting: call conn:connect_step() until it returns true")
    assert(step_until_ready(c))
    assert.is_true(c:connect_step())               -- done: stays true
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    local s = e:stats()
    assert.are.same({ 1, 1, 1, 1 }, { s.connects, s.checkouts, s.connect.count, s.checkedin })
    -- With an idle connection there is nothing to connect.
    local again, state2 = e.pool:try_connect(nil, true)
    assert.is_nil(state2)
    again:close()
  end)

  it("never block on a server that does not answer; giving up frees the slot and counts", function()
    local pid = helper.server_pid()
    local e = helper.engine { pool_size = 1, max_overflow = 0, breaker = { failures = 0 } }
    assert(os.execute("kill -STOP " .. pid))
    local ok, failure = pcall(function()
      local c = assert(e.pool:try_connect(nil, true))
      local slowest = 0
      for _ = 1, 20 do
        local t0 = sys.monotime()
        local ready = c:connect_step()
        slowest = math.max(slowest, sys.monotime() - t0)
        assert.is_false(ready)
        sys.sleep(0.005)
      end
      assert.is_true(slowest < 0.05 * helper.time_scale, "a step blocked for " .. slowest .. " s")
      c:close()                                    -- gives up: counted as a failed connect
      assert.are.same({ 0, 0, 1 }, { e.pool:checkedout(), e:stats().total, e:stats().connect_failures })
    end)
    os.execute("kill -CONT " .. pid)
    assert(ok, failure)
    assert(e:query("SELECT 1"))                    -- capacity usable again
  end)

  it("report a refused connect from a step, with kind 'connect', and leak no slot", function()
    local e = helper.engine { dsn = "postgresql://postgres@127.0.0.1:1/x", pool_size = 1,
                              max_overflow = 0, breaker = { failures = 0 } }
    local c, state, failure = e.pool:try_connect(nil, true)
    local ready, err
    if c then
      assert.are.equal("connecting", state)
      ready, err = step_until_ready(c)
      assert.is_true(c:is_closed())
    else
      err = failure
    end
    assert.is_nil(ready)
    assert.are.equal("connect", err.kind)
    assert.matches("could not connect", err.message)
    assert.are.same({ 0, 0, 1 }, { e.pool:checkedout(), e:stats().total, e:stats().connect_failures })
  end)
end)

describe("the nginx event hook outside nginx", function()
  it("is not ready, and conn:_ngx_watch says why instead of touching anything", function()
    local core = require "dbpool.core"
    assert.is_false(core.ngx_wait_ready())
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local ok, err = pcall(c._ngx_watch, c, 1, 0)
    assert.is_false(ok)
    assert.matches("dbpool: conn:_ngx_watch%(%)", err)
    assert.matches("nginx", err)
    assert(c:query("SELECT 1"))                    -- the connection is untouched
    c:close()
  end)
end)
