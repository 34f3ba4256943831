-- examples/quickstart.lua: dbpool in five minutes, for two markets (KG, US).
--
-- Run it with `make demo` (a throwaway PostgreSQL unless DATABASE_URL is set),
-- or by hand with LUA_PATH/LUA_CPATH pointing at lua/ and build/5.4 (or
-- build/jit for luajit):
--
--   DATABASE_URL_KG=postgresql://app:pw@host/shop_kg \
--   DATABASE_URL_US=postgresql://app:pw@host/shop_us lua5.4 examples/quickstart.lua
--
-- With only DATABASE_URL set, both markets use that one database (two
-- engines, two tables).  Exits non-zero if anything does not go as shown.
local dbpool = require "dbpool"

local function say(fmt, ...) io.write(fmt:format(...), "\n") end

-- assert() for `value | nil, msg, err`: raise with the error's kind and message.
local function check(value, msg, err)
  if value == nil and msg ~= nil then
    error(("%s error: %s%s"):format(tostring(err and err.kind), msg,
      err and err.sqlstate and (" [" .. err.sqlstate .. "]") or ""), 2)
  end
  return value
end

-- ---- markets -------------------------------------------------------------
local function env(name)          -- an empty variable counts as unset
  local v = os.getenv(name)
  return v ~= "" and v or nil
end
local fallback = env("DATABASE_URL")
local dsn_kg = env("DATABASE_URL_KG") or fallback
local dsn_us = env("DATABASE_URL_US") or fallback
if not (dsn_kg and dsn_us) then
  io.stderr:write("quickstart: set DATABASE_URL (or DATABASE_URL_KG and DATABASE_URL_US),",
    " or run: make demo\n")
  os.exit(2)
end

-- Two markets in one database must not share a table.
local shared = dsn_kg == dsn_us
local markets = {
  { name = "KG", dsn = dsn_kg, table = shared and "dbpool_quickstart_item_kg" or "dbpool_quickstart_item" },
  { name = "US", dsn = dsn_us, table = shared and "dbpool_quickstart_item_us" or "dbpool_quickstart_item" },
}

-- The password in a DSN (URI or key=value), to prove it is never shown.
local function password_of(dsn)
  return dsn:match("^%a[%w+.-]*://[^:/@]*:([^@/]+)@") or dsn:match("password%s*=%s*'?([^%s']+)")
end

local function assert_no_secret(market, text)
  local pw = password_of(market.dsn)
  assert(not (pw and text:find(pw, 1, true)), "password leaked in: " .. text)
  return text
end

local function count(engine, tbl)
  local rows = check(engine:query("SELECT count(*) AS n FROM " .. tbl))
  return rows[1].n
end

-- ---- the tour --------------------------------------------------------------
local function tour()
  -- 1. One engine per market: a named, process-wide QueuePool.
  for _, m in ipairs(markets) do
    m.engine = dbpool.engine {
      name = m.name, dsn = m.dsn,
      pool_size = 2, max_overflow = 1, pool_timeout = 0.5,
      application_name = "quickstart",
    }
    say("[%s] engine %s  (class %s)", m.name, assert_no_secret(m, tostring(m.engine)),
      m.engine.pool:class())
  end

  for _, m in ipairs(markets) do
    local e, t = m.engine, m.table

    -- 2. A table per market.  DELETE clears leftovers of an interrupted run.
    check(e:with(function(conn)
      check(conn:exec("CREATE TABLE IF NOT EXISTS " .. t .. " (id int PRIMARY KEY, name text)"))
      check(conn:exec("DELETE FROM " .. t))
      local who = check(conn:query("SELECT current_setting('application_name') AS app"))
      say("[%s] connected: backend pid %d, application_name=%s", m.name, conn:backend_pid(), who[1].app)
      return true
    end))

    -- 3. Parameterised statements: values travel as $1, $2, never spliced into SQL.
    check(e:with(function(conn)
      local items = { { 1, "apple" }, { 2, "pear" } }
      for _, it in ipairs(items) do
        local r = check(conn:query("INSERT INTO " .. t .. " (id, name) VALUES ($1, $2)", it[1], it[2]))
        assert(r.affected == 1)
      end
      say("[%s] inserted %d rows", m.name, #items)

      local rows = check(conn:query("SELECT id, name FROM " .. t .. " WHERE id = $1", 2))
      assert(#rows == 1 and rows[1].id == 2 and rows[1].name == "pear")
      say("[%s] SELECT ... WHERE id = $1 (2) -> id=%d name=%s", m.name, rows[1].id, rows[1].name)

      -- A server error is `nil, msg, err`; the connection stays usable.
      local dup, msg, err = conn:query("INSERT INTO " .. t .. " (id, name) VALUES ($1, $2)", 1, "again")
      assert(dup == nil and err.kind == "query" and err.sqlstate == "23505", "expected a unique violation")
      say("[%s] duplicate id -> nil, %q, err (kind=%s sqlstate=%s)", m.name, msg, err.kind, err.sqlstate)
      return true
    end))

    -- 4. A transaction that commits: BEGIN, fn, COMMIT; fn's results come back.
    local before = count(e, t)
    local id = check(e:transaction(function(conn)
      assert(conn:in_transaction())
      check(conn:query("INSERT INTO " .. t .. " (id, name) VALUES ($1, $2)", 3, "plum"))
      check(conn:query("UPDATE " .. t .. " SET name = $1 WHERE id = $2", "green apple", 1))
      return 3
    end))
    assert(id == 3 and count(e, t) == before + 1)
    say("[%s] transaction committed: rows %d -> %d", m.name, before, before + 1)

    -- 5. A transaction that raises: ROLLBACK, and the error is raised again.
    before = count(e, t)
    local ok, why = pcall(e.transaction, e, function(conn)
      check(conn:query("INSERT INTO " .. t .. " (id, name) VALUES ($1, $2)", 4, "fig"))
      error("simulated failure", 0)
    end)
    assert(not ok and why == "simulated failure", "the transaction should have raised")
    local after = count(e, t)
    assert(after == before, "the failed transaction was not rolled back")
    say("[%s] transaction raised (%s): rolled back, rows still %d", m.name, why, after)
  end

  -- 6. Pool timeout on purpose: KG holds pool_size + max_overflow = 3 connections.
  local kg = markets[1].engine
  local held = {}
  for i = 1, 3 do held[i] = check(kg:connect()) end
  say("[KG] holding 3 connections: %s", kg.pool:status())
  local t0 = os.time()
  local none, msg, err = kg:connect()
  assert(none == nil and err and err.kind == "timeout", "expected a pool timeout")
  assert(os.time() - t0 <= 5)
  say("[KG] 4th connect() -> nil, msg, err (kind=%s)", err.kind)
  say("[KG]   message: %s", assert_no_secret(markets[1], msg))
  say("[KG]   detail:  %s", assert_no_secret(markets[1], tostring(err.detail)))
  for i = 1, 3 do held[i]:close() end
  assert(kg.pool:checkedout() == 0)
  local again = check(kg:connect())   -- free again
  again:close()
  say("[KG] released: connect() works again")

  -- 7. Each pool's state, SQLAlchemy's status() text.
  for _, m in ipairs(markets) do
    say("[%s] %s", m.name, assert_no_secret(m, m.engine.pool:status()))
  end
end

-- Run the tour, then always drop the tables and dispose of the pools; a
-- failure anywhere is raised again afterwards (non-zero exit).
local ok, failure = xpcall(tour, debug.traceback)
collectgarbage()   -- returns connections a failure may have left checked out
for _, m in ipairs(markets) do
  if m.engine then
    local dropped, msg, err = m.engine:query("DROP TABLE IF EXISTS " .. m.table)
    if ok then check(dropped, msg, err) end
    m.engine:dispose()
  end
end
if not ok then error(failure, 0) end
say("dropped the tables; quickstart OK")
