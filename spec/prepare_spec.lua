-- prepare_threshold: a text run that many times on one connection is
-- prepared (PQprepare) and from then on run with PQexecPrepared, saving the
-- server a parse and plan.  Checked in the session's own
-- pg_prepared_statements, read with conn:exec (the simple protocol, which the
-- statement cache never sees).
local dbpool = require "dbpool"
local helper = require "helper"

local function prepared(c)
  local list = {}
  for _, row in ipairs(assert(c:exec(
      "SELECT name, statement FROM pg_prepared_statements ORDER BY prepare_time, name"))) do
    list[#list + 1] = row.statement
  end
  return list
end

describe("prepare_threshold", function()
  if helper.via_pgbouncer then
    it("is refused with pgbouncer = true, saying why", function()
      assert.has_error(function() helper.engine { prepare_threshold = 5 } end,
        "dbpool: option 'prepare_threshold' cannot be used with pgbouncer = true: in transaction "
        .. "pooling a prepared statement lives on one server connection and the next statement "
        .. "may run on another")
    end)
    return
  end

  it("is off by default: nothing is ever prepared", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    for _ = 1, 10 do assert(c:query("SELECT $1::int AS n", 1)) end
    assert.are.same({}, prepared(c))
    c:close()
  end)

  it("prepares a text at its threshold-th run, and the results do not change", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 3 }
    local c = assert(e:connect())
    local sql = "SELECT $1::int + 1 AS n, $2::text AS s, $3::int AS nothing, $4::bytea AS b"
    local seen = {}
    for i = 1, 4 do
      local rows = assert(c:query(sql, i, "x" .. i, dbpool.null, dbpool.bytea("\0\1")))
      seen[i] = { rows[1].n, rows[1].s, rows[1].nothing, rows[1].b, rows.columns[2], rows.affected }
      if i == 2 then assert.are.same({}, prepared(c)) end
    end
    assert.are.same({ sql }, prepared(c))
    for i = 1, 4 do
      assert.are.same({ i + 1, "x" .. i, dbpool.null, "\0\1", "s", 1 }, seen[i])
    end
    c:close()
  end)

  it("keeps at most prepared_max texts per connection and deallocates the least recently used", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1,
                              prepared_max = 2 }
    local c = assert(e:connect())
    assert(c:query("SELECT 'a' AS v"))
    assert(c:query("SELECT 'b' AS v"))
    assert(c:query("SELECT 'a' AS v"))           -- a is now the most recent
    assert(c:query("SELECT 'c' AS v"))           -- evicts b
    assert.are.same({ "SELECT 'a' AS v", "SELECT 'c' AS v" }, prepared(c))
    c:close()
  end)

  it("returns a syntax error from the prepare as the query's own error, and stays usable", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1 }
    local c = assert(e:connect())
    local rows, _, err = c:query("SELEC 1")
    assert.is_nil(rows)
    assert.are.same({ "query", "42601" }, { err.kind, err.sqlstate })
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.equal(1, e.pool:checkedin())     -- a query error does not discard it
  end)

  it("prepares again, without an error, after the app deallocated everything", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1 }
    local c = assert(e:connect())
    assert(c:query("SELECT 7 AS n"))
    assert(c:exec("DEALLOCATE ALL"))
    assert.are.same({}, prepared(c))
    assert.are.equal(7, assert(c:query("SELECT 7 AS n"))[1].n)   -- reruns it unprepared
    assert.are.equal(7, assert(c:query("SELECT 7 AS n"))[1].n)   -- and prepares it anew
    assert.are.same({ "SELECT 7 AS n" }, prepared(c))
    c:close()
  end)

  it("survives a table change that makes the cached plan's result type wrong", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1 }
    local c = assert(e:connect())
    assert(c:exec("CREATE TEMP TABLE plan_t (v int); INSERT INTO plan_t VALUES (1)"))
    assert.are.equal(1, assert(c:query("SELECT * FROM plan_t"))[1].v)
    assert(c:exec("ALTER TABLE plan_t ALTER COLUMN v TYPE text"))
    assert.are.equal("1", assert(c:query("SELECT * FROM plan_t"))[1].v)
    c:close()
  end)

  it("inside a transaction returns that error once (the transaction is lost), then recovers", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1 }
    local c = assert(e:connect())
    assert(c:exec("CREATE TEMP TABLE plan_tx (v int); INSERT INTO plan_tx VALUES (1)"))
    assert(c:query("SELECT * FROM plan_tx"))
    assert(c:exec("ALTER TABLE plan_tx ALTER COLUMN v TYPE text"))
    assert(c:exec("BEGIN"))
    local rows, _, err = c:query("SELECT * FROM plan_tx")
    assert.is_nil(rows)
    assert.are.equal("0A000", err.sqlstate)
    assert(c:exec("ROLLBACK"))
    assert.are.equal("1", assert(c:query("SELECT * FROM plan_tx"))[1].v)
    c:close()
  end)

  it("lives and dies with its connection: a new connection starts with nothing prepared", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1 }
    local c = assert(e:connect())
    assert(c:query("SELECT 1 AS one"))
    c:invalidate()
    c = assert(e:connect())
    assert.are.same({}, prepared(c))
    assert(c:query("SELECT 1 AS one"))
    assert.are.same({ "SELECT 1 AS one" }, prepared(c))
    c:close()
  end)

  it("works on the non-blocking path (OpenResty) too, and follows DEALLOCATE ALL there", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 2 }
    local c = assert(e:connect())
    local function run(sql, ...)
      local ok, msg, err = c:send(sql, ...)
      if not ok then return nil, msg, err end
      local rows
      repeat rows, msg, err = c:collect(0.05) until rows ~= false
      return rows, msg, err
    end
    assert.are.equal(3, assert(run("SELECT $1::int + 1 AS n", 2))[1].n)
    assert.are.same({}, prepared(c))
    assert.are.equal(4, assert(run("SELECT $1::int + 1 AS n", 3))[1].n)
    assert.are.same({ "SELECT $1::int + 1 AS n" }, prepared(c))
    assert(c:exec("DEALLOCATE ALL"))               -- its command tag empties the cache
    assert.are.same({}, prepared(c))
    assert.are.equal(5, assert(run("SELECT $1::int + 1 AS n", 4))[1].n)
    assert.are.equal(6, assert(run("SELECT $1::int + 1 AS n", 5))[1].n)
    assert.are.equal(7, assert(run("SELECT $1::int + 1 AS n", 6))[1].n)
    assert.are.same({ "SELECT $1::int + 1 AS n" }, prepared(c))
    c:close()
    assert.are.equal(1, e.pool:checkedin())
  end)

  it("rejects bad values with the option's name", function()
    assert.has_error(function() helper.engine { prepare_threshold = -1 } end,
      "dbpool: option 'prepare_threshold' must be an integer >= 0 (0 = never prepare), got -1")
    assert.has_error(function() helper.engine { prepared_max = 0 } end,
      "dbpool: option 'prepared_max' must be an integer from 1 to 100000, got 0")
  end)
end)
