-- Connections: checkout and return, queries and result types, reset on
-- return, and the settings sent at connect.
local dbpool = require "dbpool"
local helper = require "helper"

local is_luajit = type(jit) == "table"

describe("a checked-out connection", function()
  local e
  before_each(function() e = helper.engine { pool_size = 2, max_overflow = 1 } end)

  it("returns to the pool on close, once, and refuses use after close", function()
    local c = assert(e:connect())
    assert.are.equal(1, e.pool:checkedout())
    c:close()
    c:close()                                   -- idempotent
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(1, e.pool:checkedin())
    assert.is_true(c:is_closed())
    assert.are.equal("dbpool.Conn(closed)", tostring(c))
    assert.has_error(function() c:query("SELECT 1") end, "dbpool.Conn is closed")
    assert.has_error(function() c:backend_pid() end, "dbpool.Conn is closed")
  end)

  it("is returned by the garbage collector, counted as a leak and logged with its checkout site", function()
    local log = helper.capture_log(function()
      do local _ = assert(e:connect()) end     -- the line the log must name
      collectgarbage(); collectgarbage()
    end)
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(1, e.pool:checkedin())
    assert.are.equal(1, e:stats().leaks)
    assert.are.equal(1, #log)
    assert.are.equal("warn", log[1].level)
    local line = debug.getinfo(1, "l").currentline - 8
    assert.matches("connection checked out at spec/conn_spec.lua:" .. line
      .. " was never closed; returned by the garbage collector", log[1].message, 1, true)
  end)

  if not is_luajit then
    it("is returned when a <close> variable goes out of scope (Lua 5.4)", function()
      local chunk = assert(load([[
        local e = ...
        do local c <close> = assert(e:connect()) end
        return e.pool:checkedout()
      ]]))
      assert.are.equal(0, chunk(e))
      assert.are.equal(0, e:stats().leaks)
    end)
  end

  it("invalidate closes it for good and frees the slot", function()
    local c = assert(e:connect())
    local pid = c:backend_pid()
    c:invalidate()
    assert.are.equal(0, e.pool:checkedout())
    assert.are.equal(0, e.pool:checkedin())
    assert.are.equal(-2, e.pool:overflow())
    assert.are.equal(0, helper.settled_backends(e.name, 0))
  end)

  it("knows its backend pid and transaction state", function()
    local c = assert(e:connect())
    if not helper.via_pgbouncer then   -- PgBouncer hands out its own cancel key instead
      local rows = assert(c:query("SELECT pg_backend_pid() AS pid"))
      assert.are.equal(rows[1].pid, c:backend_pid())
    end
    assert.is_false(c:in_transaction())
    assert(c:exec("BEGIN"))
    assert.is_true(c:in_transaction())
    assert.are.equal("intrans", c:transaction_status())
    c:close()
  end)

  it("escapes literals and identifiers through libpq", function()
    local c = assert(e:connect())
    assert.are.equal("'it''s'", c:escape_literal("it's"))
    assert.are.equal('"we""ird"', c:escape_identifier('we"ird'))
    local rows = assert(c:exec("SELECT " .. c:escape_literal("a'b") .. " AS v"))
    assert.are.equal("a'b", rows[1].v)
    c:close()
  end)
end)

describe("conn:query", function()
  local e, c
  before_each(function()
    e = helper.engine()
    c = assert(e:connect())
  end)
  after_each(function() c:close() end)

  it("maps PostgreSQL types to Lua values", function()
    local rows = assert(c:query([[
      SELECT 1::int2 AS i2, 2::int4 AS i4, 3::int8 AS i8, 1.5::float4 AS f4, 2.25::float8 AS f8,
             12.5::numeric AS num, true AS yes, false AS no, NULL::int AS nothing,
             'héllo'::text AS txt, '2024-01-02'::date AS day, '\x00ff41'::bytea AS raw]]))
    local r = rows[1]
    assert.are.same({ 1, 2, 3, 1.5, 2.25, 12.5 }, { r.i2, r.i4, r.i8, r.f4, r.f8, r.num })
    if not is_luajit then assert.are.equal("integer", math.type(r.i8)) end
    assert.is_true(r.yes)
    assert.is_false(r.no)
    assert.are.equal(dbpool.null, r.nothing)
    assert.are.equal("héllo", r.txt)
    assert.are.equal("2024-01-02", r.day)
    assert.are.equal("\0\255A", r.raw)
    assert.are.same({ "i2", "i4", "i8", "f4", "f8", "num", "yes", "no", "nothing", "txt", "day", "raw" },
      rows.columns)
    assert.are.equal(1, rows.affected)
  end)

  it("keeps int8 beyond 2^53 exact (a string on LuaJIT)", function()
    local rows = assert(c:query("SELECT 9007199254740993::int8 AS big, -5::int8 AS small"))
    if is_luajit then
      assert.are.equal("9007199254740993", rows[1].big)
    else
      assert.are.equal(9007199254740993, rows[1].big)
    end
    assert.are.equal(-5, rows[1].small)
  end)

  it("reads the integer types' extremes exactly", function()
    local rows = assert(c:query([[SELECT 9223372036854775807::int8 AS max8,
      (-9223372036854775807 - 1)::int8 AS min8, (-32768)::int2 AS min2,
      2147483647::int4 AS max4, 0::int4 AS zero, 4294967295::oid AS max_oid]]))
    local r = rows[1]
    if is_luajit then
      assert.are.same({ "9223372036854775807", "-9223372036854775808" }, { r.max8, r.min8 })
    else
      assert.are.same({ math.maxinteger, math.mininteger }, { r.max8, r.min8 })
    end
    assert.are.same({ -32768, 2147483647, 0, 4294967295 }, { r.min2, r.max4, r.zero, r.max_oid })
  end)

  it("sends $n parameters separately from the SQL", function()
    local rows = assert(c:query(
      "SELECT $1::int AS a, $2::text AS b, $3::float8 AS f, $4::bool AS t, $5::int IS NULL AS n1, $6::text IS NULL AS n2, $7::bytea AS raw",
      7, "'; DROP TABLE x; --", 0.1, true, nil, dbpool.null, dbpool.bytea("a\0b")))
    local r = rows[1]
    assert.are.same({ 7, "'; DROP TABLE x; --", 0.1, true, true, true, "a\0b" },
      { r.a, r.b, r.f, r.t, r.n1, r.n2, r.raw })
  end)

  it("round-trips integers and floats exactly", function()
    local rows = assert(c:query("SELECT $1::int8 AS i, $2::float8 AS f", 2^52 + 1, 1 / 3))
    assert.are.equal(2^52 + 1, rows[1].i)
    assert.are.equal(1 / 3, rows[1].f)
  end)

  it("raises on a parameter with no SQL meaning, naming it", function()
    assert.has_error(function() c:query("SELECT $1", {}) end,
      "bad argument #3 to 'query' (parameter $1 must be a string, number, boolean, nil, dbpool.null, dbpool.bytea(s), dbpool.array(t) or dbpool.json(v), got table)")
    assert.is_truthy(c:query("SELECT 1"))          -- nothing was sent; still usable
  end)

  it("reports affected rows and returns an empty result for no rows", function()
    assert(c:exec("CREATE TEMP TABLE t (id int)"))
    local ins = assert(c:query("INSERT INTO t SELECT generate_series(1, 3)"))
    assert.are.equal(3, ins.affected)
    assert.are.equal(0, #ins)
    local upd = assert(c:query("UPDATE t SET id = id + 1 WHERE id > $1", 1))
    assert.are.equal(2, upd.affected)
    local none = assert(c:query("SELECT id FROM t WHERE id > 100"))
    assert.are.equal(0, #none)
    assert.are.same({ "id" }, none.columns)
  end)

  it("runs several statements with exec and returns the last result", function()
    local rows = assert(c:exec("SELECT 1 AS a; SELECT 2 AS b"))
    assert.are.equal(2, rows[1].b)
  end)
end)

describe("engine conveniences", function()
  local e
  before_each(function()
    e = helper.engine { pool_size = 1, max_overflow = 0 }
    assert(e:query("CREATE TABLE IF NOT EXISTS conv_t (v text)"))
    assert(e:query("TRUNCATE conv_t"))
  end)
  local function count() return #assert(e:query("SELECT v FROM conv_t")) end

  it("with returns fn's results and always returns the connection", function()
    local a, b = e:with(function(conn, x) return conn:query("SELECT $1::int AS v", x)[1].v, "second" end, 5)
    assert.are.same({ 5, "second" }, { a, b })
    assert.has_error(function() e:with(function() error("boom") end) end)
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("transaction commits on success", function()
    local res = e:transaction(function(conn)
      assert(conn:query("INSERT INTO conv_t VALUES ($1)", "kept"))
      return "done"
    end)
    assert.are.equal("done", res)
    assert.are.equal(1, count())
  end)

  it("transaction rolls back when fn raises, and raises again", function()
    assert.has_error(function()
      e:transaction(function(conn)
        assert(conn:query("INSERT INTO conv_t VALUES ('lost')"))
        error("changed my mind")
      end)
    end)
    assert.are.equal(0, count())
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("transaction rolls back when fn returns nil, err", function()
    local ok, _, err = e:transaction(function(conn)
      assert(conn:query("INSERT INTO conv_t VALUES ('lost')"))
      return conn:query("SELECT * FROM no_such_table")
    end)
    assert.is_nil(ok)
    assert.are.equal("42P01", err.sqlstate)
    assert.are.equal(0, count())
  end)

  it("transaction reports an aborted transaction instead of a silent COMMIT", function()
    local ok, _, err = e:transaction(function(conn)
      assert(conn:query("INSERT INTO conv_t VALUES ('lost')"))
      conn:query("SELECT 1/0")                      -- error ignored by fn
      return true
    end)
    assert.is_nil(ok)
    assert.are.equal("query", err.kind)
    assert.matches("rolled back", err.message)
    assert.are.equal(0, count())
  end)

  it("query checks out, runs and returns in one call", function()
    local rows = assert(e:query("SELECT $1::text AS v", "x"))
    assert.are.equal("x", rows[1].v)
    assert.are.equal(0, e.pool:checkedout())
    assert.has_error(function() e:query("SELECT $1", function() end) end)
    assert.are.equal(0, e.pool:checkedout())
  end)
end)

describe("reset on return", function()
  it("sends nothing when no transaction is open", function()
    local e = helper.engine { pool_size = 1 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:query("SELECT 42 AS marker"))
    c:close()
    assert.are.equal("SELECT 42 AS marker", helper.last_query(e.name))
  end)

  it("rolls back an open transaction (default)", function()
    local e = helper.engine { pool_size = 1, reset_session = false }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:exec("BEGIN"))
    assert(c:query("CREATE TEMP TABLE rolled_back (x int)"))
    c:close()
    assert.are.equal("ROLLBACK", helper.last_query(e.name))
    c = assert(e:connect())
    assert.are.equal(pid, c:backend_pid())
    assert.is_false(c:in_transaction())
    assert.is_nil((c:query("SELECT * FROM rolled_back")))
    c:close()
  end)

  it("rolls back a transaction aborted by a failed statement", function()
    local e = helper.engine { pool_size = 1 }
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    assert.is_nil((c:query("SELECT 1/0")))
    assert.are.equal("inerror", c:transaction_status())
    c:close()
    c = assert(e:connect())
    assert.are.equal("idle", c:transaction_status())
    assert(c:query("SELECT 1"))
    c:close()
  end)

  it("commits with reset_on_return = 'commit'", function()
    local e = helper.engine { pool_size = 1, reset_on_return = "commit" }
    assert(e:query("CREATE TABLE IF NOT EXISTS reset_commit_t (v int)"))
    assert(e:query("TRUNCATE reset_commit_t"))
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    assert(c:query("INSERT INTO reset_commit_t VALUES (1)"))
    c:close()
    assert.are.equal(1, #assert(helper.admin():query("SELECT v FROM reset_commit_t")))
  end)

  it("leaves the transaction alone with reset_on_return = false", function()
    local e = helper.engine { pool_size = 1, reset_on_return = false }
    local c = assert(e:connect())
    assert(c:exec("BEGIN"))
    c:close()
    c = assert(e:connect())
    assert.is_true(c:in_transaction())
    assert(c:exec("ROLLBACK"))
    c:close()
  end)
end)

describe("connect-time settings", function()
  -- Through PgBouncer these are refused with advice instead (pgbouncer_spec):
  -- it rejects them as startup parameters.
  if not helper.via_pgbouncer then
    it("reach the server", function()
      local app = helper.name("settings")
      local e = helper.engine { application_name = app, statement_timeout = 1234,
                                lock_timeout = 567, idle_in_transaction_session_timeout = 8900 }
      local rows = assert(e:query([[SELECT current_setting('application_name') AS app,
        current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt,
        current_setting('idle_in_transaction_session_timeout') AS it]]))
      assert.are.same({ app, "1234ms", "567ms", "8900ms" },
        { rows[1].app, rows[1].st, rows[1].lt, rows[1].it })
    end)

    it("statement_timeout cancels a long statement and the connection stays usable", function()
      local e = helper.engine { statement_timeout = 100 }
      local c = assert(e:connect())
      local rows, _, err = c:query("SELECT pg_sleep(2)")
      assert.is_nil(rows)
      assert.are.equal("57014", err.sqlstate)
      assert(c:query("SELECT 1"))
      c:close()
    end)
  end

  it("connect_timeout bounds a connect to a server that does not answer", function()
    local pid = helper.server_pid()
    local e = helper.engine { connect_timeout = 2, pool_timeout = 10, retry = { attempts = 1 } }
    assert(os.execute("kill -STOP " .. pid))
    local t0 = require("system").monotime()
    local ok, conn, _, err = pcall(e.connect, e)
    os.execute("kill -CONT " .. pid)
    local took = require("system").monotime() - t0
    assert.is_true(ok)
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.is_true(took >= 1.5 and took < 6, "took " .. took)
    assert.are.equal(0, e.pool:checkedout())
  end)
end)

describe("the unix socket", function()
  it("serves an engine as well as the loopback port", function()
    local dsn = assert(os.getenv("DBPOOL_TEST_SOCKET_DSN"))
    local e = helper.engine { dsn = dsn }
    local rows = assert(e:query("SELECT inet_server_addr() IS NULL AS local_socket"))
    assert.is_true(rows[1].local_socket)
  end)
end)
