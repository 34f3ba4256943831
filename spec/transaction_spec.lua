-- conn:transaction: BEGIN/COMMIT on an idle connection, a savepoint inside
-- an open transaction (SQLAlchemy's begin_nested, psycopg's nested
-- transaction()): an error inside undoes only its own part.
local dbpool = require "dbpool"
local helper = require "helper"

describe("conn:transaction", function()
  local e, table_name
  setup(function()
    e = helper.engine()
    table_name = helper.name("tx")
    assert(e:query(("CREATE TABLE %s (level int, note text)"):format(table_name)))
  end)
  teardown(function()
    e:query(("DROP TABLE IF EXISTS %s"):format(table_name))
  end)
  before_each(function() assert(e:query(("DELETE FROM %s"):format(table_name))) end)

  local function insert(c, level, note)
    return assert(c:query(("INSERT INTO %s VALUES ($1, $2)"):format(table_name), level, note or "x"))
  end
  local function levels()
    local rows = assert(e:query(("SELECT level FROM %s ORDER BY level"):format(table_name)))
    local out = {}
    for i, row in ipairs(rows) do out[i] = row.level end
    return out
  end

  it("on an idle connection is BEGIN ... COMMIT, returning fn's results", function()
    local c = assert(e:connect())
    local a, b = c:transaction(function(conn, x)
      assert.are.equal("intrans", conn:transaction_status())
      insert(conn, 1)
      return x, "two"
    end, "one")
    assert.are.same({ "one", "two" }, { a, b })
    assert.are.equal("idle", c:transaction_status())
    c:close()
    assert.are.same({ 1 }, levels())
  end)

  it("on an idle connection rolls back and re-raises when fn raises; the connection stays usable", function()
    local c = assert(e:connect())
    local ok, err = pcall(c.transaction, c, function(conn)
      insert(conn, 1)
      error("boom", 0)
    end)
    assert.are.same({ false, "boom" }, { ok, err })
    assert.are.equal("idle", c:transaction_status())
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.same({}, levels())
  end)

  it("nests three levels with savepoints dbpool_sp_1, dbpool_sp_2, committed together", function()
    local echo = helper.engine { echo = true }
    local log = helper.capture_log(function()
      assert(echo:transaction(function(conn)
        insert(conn, 1)
        return conn:transaction(function()
          insert(conn, 2)
          return conn:transaction(function()
            insert(conn, 3)
            return true
          end)
        end)
      end))
    end)
    local statements = {}
    for _, line in ipairs(log) do
      local sql = line.message:match("^engine [^:]+: (%u[%u ]*[%w_]*)$")
      if sql then statements[#statements + 1] = sql end
    end
    assert.are.same({ "BEGIN", "SAVEPOINT dbpool_sp_1", "SAVEPOINT dbpool_sp_2",
      "RELEASE SAVEPOINT dbpool_sp_2", "RELEASE SAVEPOINT dbpool_sp_1", "COMMIT" }, statements)
    assert.are.same({ 1, 2, 3 }, levels())
  end)

  it("an error raised at level 2 undoes level 2 and 3, keeps level 1's work, and re-raises", function()
    local ok, err = pcall(e.transaction, e, function(conn)
      insert(conn, 1)
      local inner_ok, inner_err = pcall(conn.transaction, conn, function()
        insert(conn, 2)
        conn:transaction(function() insert(conn, 3) end)
        error({ code = 42 })
      end)
      assert.is_false(inner_ok)
      assert.are.same({ code = 42 }, inner_err)    -- fn's own error value, as it raised it
      assert.are.equal("intrans", conn:transaction_status())
      insert(conn, 4)
      return true
    end)
    assert.are.same({ true, true }, { ok, err })
    assert.are.same({ 1, 4 }, levels())
  end)

  it("a nested fn returning nil, msg, err is rolled back to its savepoint and returns them", function()
    assert(e:transaction(function(conn)
      insert(conn, 1)
      local r, msg, err = conn:transaction(function()
        insert(conn, 2)
        return nil, "not today", { kind = "app" }
      end)
      assert.are.same({ nil, "not today", { kind = "app" } }, { r, msg, err })
      return true
    end))
    assert.are.same({ 1 }, levels())
  end)

  it("a failed statement inside the nested part (aborted transaction) is recovered by ROLLBACK TO", function()
    local c = assert(e:connect())
    assert(c:transaction(function(conn)
      insert(conn, 1)
      local r, msg, err = conn:transaction(function()
        insert(conn, 2)
        local rows, qmsg = conn:query("SELECT 1 / 0")
        assert.is_nil(rows)
        assert.matches("division by zero", qmsg)
        assert.are.equal("inerror", conn:transaction_status())
        return "ignored the error"                  -- went on: the part is aborted anyway
      end)
      assert.is_nil(r)
      assert.matches("rolled back to savepoint dbpool_sp_1", msg, 1, true)
      assert.are.equal("query", err.kind)
      assert.are.equal("intrans", conn:transaction_status())   -- the outer one goes on
      insert(conn, 3)
      return true
    end))
    c:close()
    assert.are.same({ 1, 3 }, levels())
  end)

  it("inside the app's own BEGIN is a savepoint, and leaves the outer transaction to the app", function()
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    insert(c, 1)
    pcall(c.transaction, c, function(conn) insert(conn, 2); error("no") end)
    assert(c:transaction(function(conn) insert(conn, 3) end) == nil)   -- fn returned nothing
    assert.are.equal("intrans", c:transaction_status())
    assert(c:exec("COMMIT"))
    c:close()
    assert.are.same({ 1, 3 }, levels())
  end)

  it("gives nil, msg, err when a transaction is already aborted, and raises at once without a function", function()
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    assert.is_nil(c:query("SELECT 1 / 0"))
    local r, msg, err = c:transaction(function() return true end)
    assert.is_nil(r)
    assert.are.equal("25P02", err.sqlstate)
    assert.is_string(msg)
    assert(c:exec("ROLLBACK"))
    local ok, why = pcall(c.transaction, c, 5)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'transaction' (function expected, got number)", why, 1, true)
    c:close()
    ok, why = pcall(c.transaction, c, function() end)
    assert.is_false(ok)
    assert.matches("dbpool.Conn is closed", why, 1, true)
  end)
end)
