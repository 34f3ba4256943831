-- Outside nginx, engine:connect and engine:query are C functions
-- (core.engine_connect, core.engine_query).  engine:query runs all in C
-- (pool:query): checkout, one statement, return, with no Conn made.  These
-- specs hold them to what the Lua versions promised: errors returned or
-- raised at the app's line, the slot always back, every counter and
-- leak_threshold still seen, leak reports naming the app's line.
local dbpool = require "dbpool"
local helper = require "helper"
local sys = require "system"

describe("engine:query", function()
  it("returns typed rows, columns and affected, and the slot is back", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local rows = assert(e:query("SELECT $1::int AS n, $2::text AS s, NULL AS z", 7, "x"))
    assert.are.same({ "n", "s", "z" }, rows.columns)
    assert.are.equal(1, rows.affected)
    assert.are.equal(7, rows[1].n)
    assert.are.equal("x", rows[1].s)
    assert.are.equal(dbpool.null, rows[1].z)
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(1, e.pool:checkedin())
    local stats = e:stats()
    assert.are.equal(1, stats.checkouts)
    assert.are.equal(1, stats.queries)
  end)

  it("raises a bad parameter at the app's line before any checkout", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local ok, msg = pcall(e.query, e, "SELECT $1", {})
    assert.is_false(ok)
    assert.matches("bad argument #3 to 'query' %(parameter $1 must be", msg)
    local ok2, msg2 = pcall(function()
      local rows = e:query("SELECT $1", {})     -- not a tail call: LuaJIT keeps no frame for one
      return rows
    end)
    assert.is_false(ok2)
    local line = debug.getinfo(1, "l").currentline - 4
    assert.matches("engine_c_spec.lua:" .. line .. ": bad argument #3", msg2, 1, true)
    assert.has_error(function() e:query({}) end)            -- sql must be a string
    assert.has_error(function() dbpool.get(e.name).query({}, "SELECT 1") end)
    assert.are.equal(0, e:stats().checkouts)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("returns a server error as nil, err and keeps the connection", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local pid = assert(e:query("SELECT pg_backend_pid() AS p"))[1].p
    local rows, _, err = e:query("SELECT 1/0")
    assert.is_nil(rows)
    assert.are.equal("query", err.kind)
    assert.are.equal("22012", err.sqlstate)
    assert.are.equal(1, e:stats().query_errors)
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(pid, assert(e:query("SELECT pg_backend_pid() AS p"))[1].p)
  end)

  it("never leaks the slot of a connection the server ended", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local pid = assert(e:query("SELECT pg_backend_pid() AS p"))[1].p
    helper.disconnect(e, { pid })
    local rows, _, err = e:query("SELECT 1 AS one")
    if rows == nil then                        -- seen only by the statement
      assert.are.equal(helper.disconnect_error.sqlstate, err.sqlstate)
    end
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(1, assert(e:query("SELECT 1 AS one"))[1].one)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("times out like a checkout when every slot is held", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.1 }
    local held = assert(e:connect())
    local t0 = sys.monotime()
    local rows, _, err = e:query("SELECT 1")
    assert.is_nil(rows)
    assert.are.equal("timeout", err.kind)
    assert.is_true(sys.monotime() - t0 >= 0.09)
    held:close()
    assert(e:query("SELECT 1"))
  end)

  it("reports a statement that outlasts leak_threshold at its return", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, leak_threshold = 0.05 }
    local log = helper.capture_log(function()
      assert(e:query("SELECT pg_sleep(0.1)"))
      assert(e:query("SELECT 1"))
    end)
    assert.are.equal(1, #log)
    assert.matches("connection returned after 0%.%d+ s, longer than leak_threshold", log[1].message)
    assert.are.equal(0, e:stats().leaks)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("rolls back nothing it did not open: an idle return costs no statement", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    assert(e:query("SELECT 42 AS marker"))
    assert.are.equal("SELECT 42 AS marker", helper.last_query(e.name))
  end)

  it("the pool's own handle does the same", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    assert.are.equal(5, assert(e.pool:query("SELECT $1::int AS v", 5))[1].v)
    assert.are.equal(0, e.pool:checkedout())
  end)
end)

describe("engine:connect", function()
  it("checks out from the engine's pool and ignores stray arguments", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.05 }
    local c = assert(e:connect(12345, true))      -- not taken as since / async
    assert.are.equal(1, e.pool:checkedout())
    assert.is_false(c:is_closed())
    local none, _, err = e:connect()
    assert.is_nil(none)
    assert.are.equal("timeout", err.kind)
    c:close()
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("refuses a call without an engine", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    assert.has_error(function() e.connect() end)
    assert.has_error(function() e.connect({}) end)
    assert.are.equal(0, e:stats().checkouts)
  end)

  it("names the app's line when the collector returns a dropped connection", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local log = helper.capture_log(function()
      local function drop() local c = e:connect(); return c ~= nil end
      drop()
      collectgarbage(); collectgarbage()
    end)
    local line = debug.getinfo(1, "l").currentline - 4
    assert.are.equal(1, #log)
    assert.matches("checked out at spec/engine_c_spec.lua:" .. line .. " was never closed",
      log[1].message, 1, true)
    assert.are.equal(0, e.pool:checkedout())
  end)
end)
