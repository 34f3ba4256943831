-- Through a real PgBouncer in transaction pooling (scripts/with-cluster.sh;
-- no test is defined without it): pgbouncer = true sends no startup
-- parameter PgBouncer rejects, relies on no session state, and queries,
-- transactions, errors, exhaustion and recovery behave as on the server.
local pgb_dsn = os.getenv("DBPOOL_PGB_DSN")
if not pgb_dsn then return end

local dbpool = require "dbpool"
local helper = require "helper"

local function engine(opts)
  local o = { dsn = pgb_dsn, pgbouncer = true, pool_size = 2, max_overflow = 1, pool_timeout = 1 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return helper.engine(o)
end

describe("pgbouncer = true", function()
  it("refuses a server setting PgBouncer cannot carry, saying where it goes instead", function()
    assert.has_error(function() engine { statement_timeout = 1000 } end,
      "dbpool: option 'statement_timeout' cannot be used with pgbouncer = true: PgBouncer "
      .. "rejects it as a startup parameter and, in transaction pooling, a SET would reach "
      .. "other clients; set it on the server instead (ALTER ROLE ... SET statement_timeout = ...)")
  end)

  it("is needed: without it the startup packet's options are rejected (08P01)", function()
    local plain = helper.engine { dsn = pgb_dsn, pgbouncer = false, statement_timeout = 1000,
                                  retry = { attempts = 1 } }
    local c, _, err = plain:connect()
    assert.is_nil(c)
    assert.are.equal("connect", err.kind)
    assert.matches("unsupported startup parameter: options", err.message, 1, true)
  end)

  it("runs parameterised queries, sends application_name, and maps types", function()
    local e = engine { application_name = "via_bouncer" }
    local rows = assert(e:query(
      "SELECT $1::int + 1 AS n, $2::text AS s, $3::int AS nothing, current_setting('application_name') AS app",
      41, "hi", dbpool.null))
    assert.are.same({ 42, "hi", dbpool.null, "via_bouncer" },
      { rows[1].n, rows[1].s, rows[1].nothing, rows[1].app })
  end)

  it("commits and rolls back transactions, and reports server errors with their SQLSTATE", function()
    local e = engine {}
    assert(e:query("CREATE TABLE IF NOT EXISTS bouncer_t (x int)"))
    assert(e:query("TRUNCATE bouncer_t"))
    assert(e:transaction(function(c) return c:query("INSERT INTO bouncer_t VALUES (1)") end))
    assert.has_error(function()
      e:transaction(function(c) assert(c:query("INSERT INTO bouncer_t VALUES (2)")); error("boom") end)
    end)
    local rows, _, err = e:transaction(function(c) return c:query("SELECT 1/0") end)
    assert.is_nil(rows)
    assert.are.equal("22012", err.sqlstate)
    assert.are.equal(1, #assert(e:query("SELECT x FROM bouncer_t")))
    local s = e:stats()
    assert.are.same({ 0, 0 }, { s.checkedout, s.invalidations })
  end)

  it("times a waiter out with the exact message when the pool is exhausted", function()
    local e = engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.1 }
    local held = assert(e:connect())
    local c, _, err = e:connect()
    assert.is_nil(c)
    assert.are.equal("QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.10",
      err.message)
    held:close()
    assert(e:query("SELECT 1"))
  end)

  it("keeps serving when the server's backends behind PgBouncer are killed", function()
    local e = engine { pool_pre_ping = true }
    for _ = 1, 3 do assert(e:query("SELECT 1")) end
    -- PgBouncer's server connections to shop_kg, from the server's side.
    local rows = assert(helper.admin():query(
      "SELECT pid FROM pg_stat_activity WHERE datname = 'shop_kg' AND usename = 'app' AND pid <> pg_backend_pid()"))
    local pids = {}
    for i, r in ipairs(rows) do pids[i] = r.pid end
    assert.is_true(#pids >= 1)
    helper.terminate(pids)
    for _ = 1, 5 do assert(e:query("SELECT 1")) end
    assert.are.equal(0, e:stats().checkedout)
  end)

  it("recovers from a server restart behind PgBouncer, with pre-ping, without a failed query", function()
    local e = engine { pool_pre_ping = true }
    for _ = 1, 3 do assert(e:query("SELECT 1")) end
    helper.pg_ctl("restart")
    -- PgBouncer's server connections died; ours to PgBouncer may have too
    -- (it closes clients whose server link broke mid-use).  Either way no
    -- query fails once the server is back.
    for _ = 1, 10 do assert(e:query("SELECT 1")) end
    assert.are.equal(0, e:stats().query_errors)
    assert.are.equal(0, e:stats().checkedout)
  end)

  it("lets dbpool.budget read PgBouncer's limits from its admin console", function()
    local console = helper.engine { dsn = os.getenv("DBPOOL_PGB_ADMIN_DSN"), pgbouncer = true }
    local e = engine { pool_size = 3, max_overflow = 2 }
    local r = assert(dbpool.budget { engines = { e }, instances = 4, live = helper.admin(),
                                     pgbouncer = console })
    assert.are.equal(tonumber(os.getenv("DBPOOL_PGB_MAX_DB_CONNECTIONS")), r.max_db_connections)
    assert.is_true(r.max_client_conn > 0)
    assert.are.equal(r.max_client_conn, r.available)
    assert.are.equal(20, r.needed)
    assert.is_true(r.server_fits)
    assert.matches("PgBouncer's max_client_conn; it opens at most " .. r.max_db_connections
      .. " server connections, within", r.sentence, 1, true)
  end)
end)
