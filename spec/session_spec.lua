-- What a statement may do to a connection and to the pool (DESIGN.md,
-- "Never hands out a dead connection" and "Returns clean connections"):
-- a query error keeps every connection; session state does not reach the
-- next borrower (reset_session); COPY is refused on the plain path; one
-- statement at a time per Conn; the prepared-statement cache follows the
-- server; a connection that moved a big message is not pooled.
local dbpool = require "dbpool"
local helper = require "helper"

local function pids_of(e, n)
  local pids = helper.pids_of(e, n)
  table.sort(pids)
  return pids
end

describe("a query error", function()
  it("leaves every connection of the pool in place: wrong parameter count, syntax, unique, division", function()
    local e = helper.engine { pool_size = 3, max_overflow = 0 }
    local before = pids_of(e, 3)
    local c = assert(e:connect())
    assert(c:exec("CREATE TEMP TABLE uniq (id int PRIMARY KEY)"))
    assert(c:query("INSERT INTO uniq VALUES (1)"))
    local cases = {
      { function() return c:query("SELECT $1::int + $2::int", 1) end, "08P01" },
      { function() return c:query("SELEC 1") end, "42601" },
      { function() return c:query("INSERT INTO uniq VALUES (1)") end, "23505" },
      { function() return c:query("SELECT 1/0") end, "22012" },
    }
    if helper.via_pgbouncer then table.remove(cases, 1) end   -- PgBouncer answers 08P01 itself
    for _, case in ipairs(cases) do
      local rows, msg, err = case[1]()
      assert.is_nil(rows)
      assert.are.equal(case[2], err.sqlstate, msg)
      assert.are.equal("query", err.kind)
    end
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.same(before, pids_of(e, 3))
    assert.are.equal(0, e:stats().invalidations)
  end)

  it("from engine:query does not churn the pool either", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0 }
    local before = pids_of(e, 2)
    for _ = 1, 20 do assert.is_nil((e:query("SELECT $1::int + $2::int", 1))) end
    assert.are.same(before, pids_of(e, 2))
  end)
end)

describe("reset_session", function()
  if helper.via_pgbouncer then
    it("sends nothing through PgBouncer (pgbouncer = true)", function()
      local e = helper.engine { pool_size = 1, max_overflow = 0 }
      local c = assert(e:connect())
      assert(c:exec("SET application_name = 'changed'"))
      c:close()
      assert.are.equal(0, e:stats().session_resets)
    end)
    return
  end

  -- Each case leaves state in the session; on return "auto" sends DISCARD ALL.
  local dirtying = {
    SET = "SET statement_timeout = 5",
    RESET = "RESET statement_timeout",
    LISTEN = "LISTEN some_channel",
    PREPARE = "PREPARE user_stmt AS SELECT 1",
    ["DECLARE CURSOR"] = "BEGIN; DECLARE cur CURSOR WITH HOLD FOR SELECT 1; COMMIT",
    ["CREATE TABLE"] = "CREATE TEMP TABLE scratch (x int)",
    LOAD = "LOAD 'plpgsql'",
    ["SET ROLE"] = "SET ROLE postgres",
    ["SET SESSION AUTHORIZATION"] = "SET SESSION AUTHORIZATION postgres",
  }
  for tag, sql in pairs(dirtying) do
    it("\"auto\" sends DISCARD ALL on return after " .. tag, function()
      local e = helper.engine { pool_size = 1, max_overflow = 0 }
      local c = assert(e:connect())
      local pid = c:backend_pid()
      assert(c:exec(sql))
      c:close()
      assert.are.equal("DISCARD ALL", helper.last_query(e.name))
      assert.are.equal(1, e:stats().session_resets)
      c = assert(e:connect())
      assert.are.equal(pid, c:backend_pid())         -- the same connection, clean
      assert.are.equal("0", assert(c:query("SHOW statement_timeout"))[1].statement_timeout)
      assert.are.equal(0, #assert(c:query("SELECT name FROM pg_prepared_statements")))
      assert.are.equal(0, #assert(c:query("SELECT * FROM pg_listening_channels()")))
      assert.are.equal(dbpool.null, assert(c:query("SELECT to_regclass('pg_temp.scratch') AS t"))[1].t)
      assert.are.equal("postgres", assert(c:query("SELECT current_user AS u"))[1].u)
      c:close()
    end)
  end

  it("\"auto\": after a plain SELECT the return costs no round trip", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    assert(c:query("SELECT 4242 AS marker"))
    c:close()
    assert.are.equal("SELECT 4242 AS marker", helper.last_query(e.name))
    assert.are.equal(0, e:stats().session_resets)
  end)

  it("\"auto\" keeps the engine's own connect-time settings", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, statement_timeout = 4321 }
    local c = assert(e:connect())
    assert(c:exec("SET statement_timeout = 5"))
    c:close()
    c = assert(e:connect())
    assert.are.equal("4321ms", assert(c:query("SHOW statement_timeout"))[1].statement_timeout)
    c:close()
  end)

  it("\"always\" sends DISCARD ALL after any statement, and not after none", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, reset_session = "always" }
    local c = assert(e:connect())
    c:close()
    assert.are.equal(0, e:stats().session_resets)
    c = assert(e:connect())
    assert(c:query("SELECT set_config('statement_timeout', '7', false)"))   -- no tag shows it
    c:close()
    assert.are.equal(1, e:stats().session_resets)
    c = assert(e:connect())
    assert.are.equal("0", assert(c:query("SHOW statement_timeout"))[1].statement_timeout)
    c:close()
  end)

  it("false never sends it: the next borrower sees the state", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, reset_session = false }
    local c = assert(e:connect())
    assert(c:exec("SET statement_timeout = 5"))
    c:close()
    c = assert(e:connect())
    assert.are.equal("5ms", assert(c:query("SHOW statement_timeout"))[1].statement_timeout)
    c:close()
    assert.are.equal(0, e:stats().session_resets)
  end)

  it("discards a dirty connection returned inside a transaction with reset_on_return = false", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, reset_on_return = false }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:exec("BEGIN; SET LOCAL statement_timeout = 5"))
    c:close()
    c = assert(e:connect())
    assert.are_not.equal(pid, c:backend_pid())
    c:close()
  end)

  it("refuses a bad value, naming the option", function()
    local ok, why = pcall(helper.engine, { reset_session = "sometimes" })
    assert.is_false(ok)
    assert.matches("option 'reset_session' must be \"auto\", \"always\" or false", why, 1, true)
  end)
end)

describe("COPY on the plain path", function()
  for _, sql in ipairs { "COPY (SELECT g FROM generate_series(1, 1000) g) TO STDOUT",
                         "COPY copy_in FROM STDIN" } do
    it("is refused, naming COPY and the copy API, and the connection stays usable: " .. sql, function()
      local e = helper.engine { pool_size = 1, max_overflow = 0 }
      local c = assert(e:connect())
      local pid = c:backend_pid()
      assert(c:exec("CREATE TEMP TABLE copy_in (x int)"))
      for _, run in ipairs { c.exec, c.query } do
        local rows, msg, err = run(c, sql)
        assert.is_nil(rows)
        assert.matches("COPY", msg, 1, true)
        assert.matches("copy_from", msg, 1, true)
        assert.are.equal("query", err.kind)
        assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
      end
      c:close()
      c = assert(e:connect())
      assert.are.equal(pid, c:backend_pid())
      c:close()
    end)
  end
end)

describe("one statement at a time per Conn", function()
  it("refuses a statement from a second coroutine at once; the first keeps its result", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local a = coroutine.wrap(function()
      assert(c:send("SELECT pg_sleep(0.2), 'first' AS who"))
      coroutine.yield()
      local rows
      repeat rows = c:collect(0.05) until rows ~= false
      return rows
    end)
    a()                                            -- A sent and yielded
    for _, call in ipairs { function() return c:query("SELECT 'second' AS who") end,
                            function() return c:exec("SELECT 2") end,
                            function() return c:send("SELECT 2") end } do
      local ok, why = pcall(call)
      assert.is_false(ok)
      assert.matches("dbpool.Conn is busy", why, 1, true)
    end
    local rows = a()
    assert.are.equal("first", assert(rows)[1].who)
    assert.are.equal("second", assert(c:query("SELECT 'second' AS who"))[1].who)
    c:close()
  end)
end)

describe("the prepared-statement cache", function()
  if helper.via_pgbouncer then return end          -- refused with pgbouncer = true

  local function ours(c)
    return tonumber(assert(c:query(
      "SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE 'dbpool_%'"))[1].n)
  end

  it("follows DEALLOCATE ALL, DISCARD ALL and DEALLOCATE name: no failed transaction after them", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1,
                              reset_session = false }
    local c = assert(e:connect())
    local texts = { "SELECT 1 AS v", "SELECT 2 AS v", "SELECT 3 AS v", "SELECT 4 AS v" }
    for _, clear in ipairs { "DEALLOCATE ALL", "DISCARD ALL", "DEALLOCATE dbpool_name" } do
      for _, sql in ipairs(texts) do assert(c:query(sql)) end
      if clear == "DEALLOCATE dbpool_name" then
        local name = assert(c:query("SELECT name FROM pg_prepared_statements WHERE statement = $1",
          texts[1]))[1].name
        clear = "DEALLOCATE " .. name
      end
      assert(c:exec(clear))
      for _, sql in ipairs(texts) do
        assert(c:exec("BEGIN"))
        assert(c:query(sql), clear .. ": " .. sql)    -- inside a transaction: no error
        assert(c:exec("COMMIT"))
      end
    end
    c:close()
  end)

  it("reruns only a stale plan, not a function that raises 0A000 after a side effect", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1 }
    local c = assert(e:connect())
    assert(c:exec([[CREATE TEMP TABLE side (n int);
      CREATE FUNCTION pg_temp.raise_0a000() RETURNS int LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO side VALUES (1); RAISE EXCEPTION 'nope' USING ERRCODE = '0A000'; END $$]]))
    assert(c:query("SELECT 1 AS x"))                -- warm the cache
    local rows, _, err = c:query("SELECT pg_temp.raise_0a000() AS r")
    assert.is_nil(rows)
    assert.are.equal("0A000", err.sqlstate)
    assert(c:exec("CREATE TEMP TABLE side2 AS SELECT count(*) AS n FROM side"))
    assert.are.equal(0, assert(c:query("SELECT n FROM side2"))[1].n)   -- rolled back, run once
    -- A stale plan is run again, unprepared, transparently.
    assert(c:exec("CREATE TEMP TABLE shape (a int)"))
    assert(c:query("SELECT * FROM shape"))
    assert(c:exec("ALTER TABLE shape ADD COLUMN b int"))
    assert(c:query("SELECT * FROM shape"))
    c:close()
  end)

  it("deallocates evictions after an aborted transaction: never more than prepared_max of ours", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, prepare_threshold = 1,
                              prepared_max = 2, reset_session = false }
    local c = assert(e:connect())
    for round = 1, 4 do
      assert(c:exec("BEGIN"))
      for i = 1, 3 do assert(c:query(("SELECT %d AS r%d"):format(i, round))) end
      c:query("SELECT 1/0")                                   -- aborts the transaction
      for i = 4, 6 do c:query(("SELECT %d AS r%d"):format(i, round)) end   -- evicting inside it
      assert(c:exec("ROLLBACK"))
      assert.is_true(ours(c) <= 2, "round " .. round .. ": " .. ours(c) .. " prepared")
    end
    c:close()
  end)
end)

describe("max_message_size", function()
  it("closes on return a connection that read a result over the bound", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, max_message_size = 1024 * 1024 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:query("SELECT repeat('x', 2 * 1024 * 1024) AS big"))
    c:close()
    assert.are.equal(1, e:stats().oversized_closes)
    c = assert(e:connect())
    assert.are_not.equal(pid, c:backend_pid())
    assert(c:query("SELECT 1"))
    c:close()
    c = assert(e:connect())                       -- small messages: pooled as usual
    local again = c:backend_pid()
    c:close()
    c = assert(e:connect())
    assert.are.equal(again, c:backend_pid())
    c:close()
  end)

  it("closes on return a connection that sent a parameter over the bound", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, max_message_size = 1024 * 1024 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    assert(c:query("SELECT length($1) AS n", ("y"):rep(2 * 1024 * 1024)))
    c:close()
    c = assert(e:connect())
    assert.are_not.equal(pid, c:backend_pid())
    c:close()
  end)

  it("keeps the process near its baseline after a 48 MB result", function()
    local function rss_kb()
      for line in io.lines("/proc/self/status") do
        local kb = line:match("^VmRSS:%s+(%d+)")
        if kb then return tonumber(kb) end
      end
    end
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    assert(e:query("SELECT 1"))
    collectgarbage(); collectgarbage()
    local base = rss_kb()
    local rows = assert(e:query("SELECT repeat('z', 48 * 1024 * 1024) AS big"))
    assert.are.equal(48 * 1024 * 1024, #rows[1].big)
    rows = nil                                      -- luacheck: ignore
    collectgarbage(); collectgarbage()
    local after = rss_kb()
    -- libpq's buffers went with the connection; glibc may keep a little
    assert.is_true(after - base < 8 * 1024 * helper.time_scale,
      ("RSS grew by %d kB"):format(after - base))
    assert.are.equal(1, e:stats().oversized_closes)
  end)
end)
