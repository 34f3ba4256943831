-- Read replicas with a real hot standby (scripts/with-cluster.sh; no test is
-- defined without it): reads go to a healthy replica, fall back to the
-- primary when none is, and writes never reach one.
local standby_dsn = os.getenv("DBPOOL_STANDBY_APP_DSN")
if not standby_dsn then return end

local helper = require "helper"
local sys = require "system"

local function standby_ctl(action)
  assert(os.execute("scripts/standby-ctl.sh " .. action .. " >/dev/null"), "standby-ctl " .. action)
end

local function engine()
  return helper.engine { dsn = helper.app_dsn, replicas = { standby_dsn }, pool_pre_ping = true,
                         retry = { attempts = 1 }, breaker = { failures = 2, cooldown = 0.5 } }
end

local function on_replica(e)
  return assert(e:read_query("SELECT pg_is_in_recovery() AS r"))[1].r
end

-- Reads until fn(rows) holds or the deadline passes (a table not replayed
-- yet is an error meanwhile); returns the last rows.
local function read_until(e, sql, fn, seconds)
  local deadline = sys.monotime() + (seconds or 5)
  local rows, err
  repeat
    rows, err = e:read_query(sql)   -- err: the message
    if rows and fn(rows) then return rows end
    sys.sleep(0.02)
  until sys.monotime() > deadline
  return assert(rows, err)
end

describe("replicas", function()
  it("serve reads after replay, while writes go to the primary", function()
    local e = engine()
    assert.is_true(on_replica(e))
    local t = helper.name("replica_t")             -- a new table on every run
    assert(e:query("CREATE TABLE " .. t .. " (x int)"))   -- the primary
    assert(e:query("INSERT INTO " .. t .. " VALUES (7)"))
    local rows = read_until(e, "SELECT count(*) AS n FROM " .. t .. " WHERE x = 7",
      function(r) return r[1].n == 1 end)
    assert.are.equal(1, rows[1].n)
    -- A write through read() fails on the replica: read() is for reads.
    local ok, _, err = e:read(function(c) return c:query("INSERT INTO " .. t .. " VALUES (8)") end)
    assert.is_nil(ok)
    assert.are.equal("25006", err.sqlstate)
    local s = e:stats()
    assert.are.equal(0, s.read_fallbacks)
    assert.is_true(e.replicas[1]:stats().checkouts >= 3)
    assert.are.equal("dbpool.Pool(" .. e.name .. "/replica1, postgresql://app:***@127.0.0.1:"
      .. os.getenv("DBPOOL_STANDBY_PORT") .. "/shop_kg)", tostring(e.replicas[1]))
  end)

  it("fall back to the primary without a failed read when the replica stops, and return", function()
    local e = engine()
    assert.is_true(on_replica(e))
    local ok, failure = pcall(function()
      standby_ctl("stop")
      for _ = 1, 10 do
        assert.is_false(on_replica(e))             -- served by the primary, no error
      end
      assert.are.equal(10, e:stats().read_fallbacks)
      assert.are.equal("open", e.replicas[1]:breaker())
    end)
    standby_ctl("start")
    assert(ok, failure)
    local rows = read_until(e, "SELECT pg_is_in_recovery() AS r", function(r) return r[1].r end)
    assert.is_true(rows[1].r, "reads did not return to the replica")
    assert.are.equal("closed", e.replicas[1]:breaker())
  end)

  it("keep serving reads while the primary restarts; writes recover with pre-ping", function()
    local e = engine()
    assert(e:query("SELECT 1"))
    helper.pg_ctl("restart")
    assert.is_true(on_replica(e))
    assert(e:query("SELECT 1"))                    -- pre-ping replaced the old connection
    assert.are.equal(0, e:stats().query_errors)
  end)
end)
