-- engine:query's FFI path (lua/dbpool/fastpath.lua, csrc/ffi_call.c): under
-- LuaJIT outside nginx, engine:query goes through it, blocking; these specs
-- hold it to the classic binding's answers (spec/nginx/fastpath_cases.lua), the
-- same counters, and to leaving to the classic path what it cannot do
-- exactly.  Under nginx, spec/nginx/worker_spec.lua does the same through
-- the yielding path.  Lua 5.4 has no FFI: there the specs are pending.
local dbpool = require "dbpool"
local helper = require "helper"
-- The cases live with the nginx app, which runs them too (nginx serves a
-- copy of spec/nginx only).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
package.path = here .. "/nginx/?.lua;" .. package.path
local cases = require "fastpath_cases"

describe("engine:query through LuaJIT's FFI", function()
  if not rawget(_G, "jit") then
    pending("LuaJIT only: Lua 5.4 keeps the classic binding")
    return
  end
  local core = require "dbpool.core"
  local fast = require "dbpool.fastpath"
  local SLOW = fast.SLOW

  -- The FFI path as engine:query uses it (the classic one when it says SLOW),
  -- and the classic binding alone.
  local function both_ways(e)
    local function via_ffi(...)
      local rows, msg, err = fast.query(e.pool, ...)
      if rows == SLOW then return core.engine_query(e, ...) end
      return rows, msg, err
    end
    local function classic(...) return core.engine_query(e, ...) end
    return via_ffi, classic
  end

  it("answers every case as the classic binding does: rows, columns, affected, errors", function()
    for _, options in ipairs { {}, { numeric = "string" } } do
      options.pool_size, options.max_overflow = 1, 0
      local e = helper.engine(options)
      local via_ffi, classic = both_ways(e)
      for _, case in ipairs(cases.cases) do
        assert(cases.compare(case, via_ffi, classic))
      end
      assert.are.equal(0, e.pool:checkedout())
      dbpool.remove(e.name)
    end
  end)

  it("is what engine:query runs, and counts checkouts and statements as the classic path", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    assert.are_not.equal(SLOW, fast.query(e.pool, "SELECT 1"))
    assert.are_not.equal(SLOW, fast.query(e.pool, "SELECT $1::int, $2", 7, "x"))
    for _ = 1, 3 do assert(e:query("SELECT 1")) end
    local stats = e:stats()
    assert.are.equal(5, stats.checkouts)
    assert.are.equal(5, stats.queries)
    assert.is_nil(e:query("SELECT 1/0"))
    assert.are.equal(1, e:stats().query_errors)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("leaves to the classic path what it cannot do exactly, before any checkout", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    for _, args in ipairs {
      { 42 }, { {} }, { "SELECT 1\0" }, { "SELECT $1", true }, { "SELECT $1", {} },
      { "SELECT $1", dbpool.null }, { "SELECT $1", 0.5 }, { "SELECT $1", 2 ^ 60 },
      { "SELECT $1", "a\0b" },
    } do
      assert.are.equal(SLOW, fast.query(e.pool, args[1], args[2]))
    end
    assert.are.equal(0, e:stats().checkouts)
    assert.are.equal(SLOW, fast.query(nil, "SELECT 1"))
    for _, options in ipairs { { echo = true }, { echo_pool = true }, { leak_threshold = 5 } } do
      local logged = helper.engine(options)
      assert.are.equal(SLOW, fast.query(logged.pool, "SELECT 1"))
    end
    -- and the classic path still raises for what is wrong, at the app's line
    local ok, msg = pcall(function()
      local rows = e:query("SELECT $1", {})
      return rows
    end)
    assert.is_false(ok)
    assert.matches("fastpath_spec.lua:%d+: bad argument #3 to 'query'", msg)
  end)

  it("returns the slot after a query_timeout and after a disconnect", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, query_timeout = 0.2 }
    local rows, msg, err = e:query("SELECT pg_sleep(5)")
    assert.is_nil(rows)
    assert.are.equal("query_timeout", err.kind, msg)
    assert.are.equal(0, e.pool:checkedout())
    local pid = assert(e:query("SELECT pg_backend_pid() AS p"))[1].p
    helper.disconnect(e, { pid })
    rows, msg, err = e:query("SELECT 1")
    if rows == nil then                -- the pool may have seen the goodbye first
      assert.are.equal(helper.disconnect_error.sqlstate, err.sqlstate, msg)
    end
    assert.are.equal(0, e.pool:checkedout())
    assert(e:query("SELECT 1"))
  end)

  it("keeps each query's parameters and rows its own when a finalizer queries in between", function()
    local ffi = require "ffi"
    local e = helper.engine { pool_size = 2, max_overflow = 0 }
    local nested = 0
    local function query_in_finalizer()
      nested = nested + 1
      assert(e:query("SELECT $1::int AS k, false AS unlocked", nested))
    end
    local bad_rows, bad_params = 0, 0
    for _ = 1, 100 do
      for _ = 1, 50 do ffi.gc(ffi.new("char[64]"), query_in_finalizer) end   -- garbage at once
      local rows = assert(e:query("SELECT g AS a, g * 2 AS b FROM generate_series(1, 200) g"))
      for _, row in ipairs(rows) do
        if row.b ~= row.a * 2 then bad_rows = bad_rows + 1 break end
      end
      local got = assert(e:query("SELECT $1::text AS p1, $2::text AS p2, $3::text AS p3",
                                 "first", "second", 12345))[1]
      if got.p1 ~= "first" or got.p2 ~= "second" or got.p3 ~= "12345" then bad_params = bad_params + 1 end
    end
    collectgarbage()
    assert.is_true(nested > 0, "no finalizer ran a query")
    assert.are.same({ 0, 0 }, { bad_rows, bad_params })
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("loads again after package.loaded is cleared (its C types are declared once)", function()
    local saved = {}
    for name, mod in pairs(package.loaded) do
      if name:match("^dbpool") and name ~= "dbpool.core" then saved[name], package.loaded[name] = mod, nil end
    end
    local ok, err = pcall(require, "dbpool.fastpath")
    for name, mod in pairs(saved) do package.loaded[name] = mod end
    assert(ok, err)
  end)

  it("says what the classic path says of a missing statement", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local _, via_engine = pcall(e.query, e)
    local _, classic = pcall(core.engine_query, e)
    assert.are.equal(classic, via_engine)
    assert.matches("got no value", via_engine, 1, true)
  end)

  it("gives the connection of a dropped call back when the collector frees it", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local call = fast.take_call(fast.info(e.pool))
    assert.are.equal(fast.OK, fast.api.checkout(call.c, true))
    assert.are.equal(1, e.pool:checkedout())
    call = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(1, e:stats().leaks, "counted as a Conn the collector returns")
    assert(e:query("SELECT 1"))
  end)
end)
