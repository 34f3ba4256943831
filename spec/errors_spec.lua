-- Errors: misuse raises, runtime failures return nil, err; a failure leaves
-- the connection and every count consistent; no password is ever shown.
local dbpool = require "dbpool"
local helper = require "helper"

-- The app role's password, new for every throwaway cluster (scripts/pg-start.sh).
local SECRET = assert(os.getenv("DBPOOL_APP_PASSWORD"), "DBPOOL_APP_PASSWORD is not set")

describe("runtime failures the Lua way: nil, msg, err", function()
  local e
  before_each(function() e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.2 } end)

  it("give a string second and the error table third, naming the engine", function()
    local c = assert(e:connect())
    local rows, msg, err = c:query("SELECT 1/0")
    assert.is_nil(rows)
    assert.are.equal("string", type(msg))
    assert.are.equal("division by zero", msg)
    assert.are.equal(msg, err.message)
    assert.are.equal(e.name, err.engine)
    assert.are.equal("22012", err.sqlstate)
    assert.are.equal("failed: division by zero", "failed: " .. msg)
    local ok, raised = pcall(error, msg, 0)
    assert.is_false(ok)
    assert.are.equal("division by zero", raised)
    local ok2, asserted = pcall(function() return assert(c:query("SELECT 1/0")) end)
    assert.is_false(ok2)
    assert.matches("division by zero", asserted)
    c:close()
  end)

  it("for every failing call: connect, query, exec, send, transaction, with, query on the engine", function()
    local held = assert(e:connect())
    local function check_failure(what, value, msg, err)
      assert.is_nil(value, what)
      assert.are.equal("string", type(msg), what)
      assert.are.equal(dbpool.Error, getmetatable(err), what)
      assert.are.equal(msg, err.message, what)
      assert.are.equal(e.name, err.engine, what)
    end
    check_failure("connect", e:connect())                     -- the pool is exhausted
    check_failure("with", e:with(function() end))
    check_failure("transaction", e:transaction(function() end))
    check_failure("engine:query", e:query("SELECT 1"))
    check_failure("try_connect", e.pool:try_connect())
    check_failure("conn:query", held:query("SELEC 1"))
    check_failure("conn:exec", held:exec("SELEC 1"))
    check_failure("transaction aborted", (function()
      held:close()
      return e:transaction(function(c) c:query("SELECT 1/0"); return true end)
    end)())
    assert.are.equal(0, e.pool:checkedout())
  end)
end)

describe("runtime errors", function()
  local e
  before_each(function() e = helper.engine { pool_size = 1, max_overflow = 0 } end)

  it("carry the server's sqlstate, severity, message, detail and hint", function()
    local c = assert(e:connect())
    local rows, _, err = c:query([[DO $$ BEGIN RAISE EXCEPTION 'boom %', 1
      USING DETAIL = 'the detail', HINT = 'the hint', ERRCODE = 'P0001'; END $$]])
    assert.is_nil(rows)
    assert.are.equal("query", err.kind)
    assert.are.equal("P0001", err.sqlstate)
    assert.are.equal("ERROR", err.severity)
    assert.are.equal("boom 1", err.message)
    assert.are.equal("the detail", err.detail)
    assert.are.equal("the hint", err.hint)
    assert.are.equal("boom 1", tostring(err))
    assert.are.equal(dbpool.Error, getmetatable(err))
    c:close()
  end)

  it("leave the connection usable and the counts consistent", function()
    local c = assert(e:connect())
    local pid = c:backend_pid()
    local rows, _, err = c:query("SELECT * FROM missing_table")
    assert.is_nil(rows)
    assert.are.equal("42P01", err.sqlstate)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    local stats = e:stats()
    assert.are.same({ 0, 1, 2, 1 }, { stats.checkedout, stats.checkedin, stats.queries, stats.query_errors })
    c = assert(e:connect())
    assert.are.equal(pid, c:backend_pid())      -- kept: a query error is not a broken link
    c:close()
  end)

  it("discard a connection whose backend was terminated", function()
    local c = assert(e:connect())
    local pid = c:backend_pid()
    helper.disconnect(e, { pid })
    local rows, _, err = c:query("SELECT 1")
    assert.is_nil(rows)
    assert.are.equal("query", err.kind)
    c:close()
    assert.are.equal(0, e.pool:checkedin())     -- not pooled
    assert.are.equal(0, e.pool:checkedout())
    c = assert(e:connect())
    assert.are_not.equal(pid, c:backend_pid())
    assert(c:query("SELECT 1"))
    c:close()
    assert.are.equal(1, e:stats().invalidations)
  end)

  it("report a failed connect with kind 'connect' and leak no slot", function()
    local down = helper.engine { dsn = "postgresql://app@127.0.0.1:1/db", connect_timeout = 2,
                                 retry = { attempts = 2, base = 0.01, max = 0.01 } }
    local conn, _, err = down:connect()
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches("could not connect", err.message)
    assert.are.same({ 0, 0 }, { down.pool:checkedout(), down.pool:checkedin() })
    assert.are.equal(2, down:stats().connect_failures)     -- one per attempt
  end)

  it("raise for misuse: wrong argument types", function()
    local c = assert(e:connect())
    assert.has_error(function() c:query({}) end)
    assert.has_error(function() c.query(nil, "SELECT 1") end)
    assert.has_error(function() c:escape_literal(nil) end)
    c:close()
  end)
end)

describe("secrets", function()
  local dsn = helper.app_dsn
  local at = assert(dsn:find(SECRET, 1, true), "DBPOOL_APP_DSN holds the app password")
  local wrong = dsn:sub(1, at - 1) .. "Wr0ngSecret77" .. dsn:sub(at + #SECRET)

  local function assert_no_secret(text)
    text = tostring(text)
    assert.is_nil(text:find(SECRET, 1, true), "password in: " .. text)
    assert.is_nil(text:find("Wr0ngSecret77", 1, true), "password in: " .. text)
  end

  it("never appear in tostring, status, stats or dsn()", function()
    local e = helper.engine { dsn = dsn }
    local c = assert(e:connect())
    assert_no_secret(tostring(e))
    assert_no_secret(tostring(e.pool))
    assert_no_secret(tostring(c))
    assert_no_secret(e.pool:status())
    assert_no_secret(e.pool:dsn())
    assert.matches(":%*%*%*@", e.pool:dsn())
    for k, v in pairs(e:stats()) do assert_no_secret(k .. "=" .. tostring(v)) end
    c:close()
  end)

  it("never appear in a failed login's error", function()
    -- pool_timeout bounds the connects too: room for slow logins (valgrind)
    local e = helper.engine { dsn = wrong, pool_timeout = 5 * helper.time_scale }
    local conn, _, err = e:connect()
    assert.is_nil(conn)
    assert.are.equal("connect", err.kind)
    assert.matches(helper.login_failed, err.message, 1, true)
    assert_no_secret(err.message)
    assert_no_secret(tostring(err))
  end)

  it("never appear in an option error", function()
    local ok, err = pcall(dbpool.engine, { name = helper.name(), dsn = wrong, pool_size = "x" })
    assert.is_false(ok)
    assert_no_secret(err)
    ok, err = pcall(dbpool.engine, { name = helper.name(), dsn = dsn, pool_size = wrong })
    assert.is_false(ok)
    assert.matches("option 'pool_size' must be", err, 1, true)
    assert_no_secret(err)
    ok, err = pcall(dbpool.engine, { name = helper.name(), dsn = wrong, replicas = { wrong, 7 } })
    assert.is_false(ok)
    assert_no_secret(err)
  end)

  it("are redacted in every DSN form", function()
    local core = require "dbpool.core"
    assert.are.equal("postgresql://app:***@h:5432/db?sslmode=require",
      core.redact("postgresql://app:" .. SECRET .. "@h:5432/db?sslmode=require"))
    assert.are.equal("postgresql://app@h/db?password=***&application_name=x",
      core.redact("postgresql://app@h/db?password=" .. SECRET .. "&application_name=x"))
    assert.are.equal("host=h password=*** user=app",
      core.redact("host=h password=" .. SECRET .. " user=app"))
    assert.are.equal("host=h password = *** user=app",
      core.redact("host=h password = 'a b\\'c' user=app"))
  end)
end)
