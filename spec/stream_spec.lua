-- conn:stream (DESIGN.md, Lua API): a result row by row (libpq's
-- single-row mode), in constant memory, with conn:query's rows; an error
-- mid-stream (the server's, or fn's) leaves the connection usable.
local dbpool = require "dbpool"
local helper = require "helper"
local core = require "dbpool.core"

describe("conn:stream", function()
  it("calls fn with each row as conn:query builds it and returns the count", function()
    local e = helper.engine()
    local c = assert(e:connect())
    local sql = "SELECT g AS id, g * 1.5 AS half, g % 2 = 0 AS even, 'r' || g AS name, " ..
                "NULLIF(g, 2) AS maybe FROM generate_series(1, $1::int) g"
    local got = {}
    local n = assert(c:stream(sql, function(row) got[#got + 1] = row end, 1000))
    assert.are.equal(1000, n)
    local want = assert(c:query(sql, 1000))
    assert.are.equal(#want, #got)
    for i = 1, #want do
      for _, col in ipairs(want.columns) do
        assert.are.equal(want[i][col], got[i][col], ("row %d column %s"):format(i, col))
      end
    end
    assert.are.equal(dbpool.null, got[2].maybe)
    assert.are.equal(0, assert(c:stream("SELECT 1 WHERE false", function() error("no row") end)))
    c:close()
  end)

  it("streams 2,000,000 rows with the process's peak memory under 50 MB", function()
    -- A child process, so that the peak (VmHWM) is this stream's alone.
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write([[
local dbpool = require "dbpool"
local e = dbpool.engine { name = "stream", dsn = os.getenv("DSN"), pool_size = 1,
                          pgbouncer = os.getenv("PGB") == "1" }
local c = assert(e:connect())
local n, last = 0, 0
local seen = assert(c:stream("SELECT g, md5(g::text) AS h FROM generate_series(1, 2000000) g",
  function(row) n = n + 1; last = row.g end))
local status = assert(io.open("/proc/self/status")):read("*a")
print(seen, n, last, status:match("VmHWM:%s*(%d+) kB"))
c:close()
]])
    f:close()
    local q = function(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
    local p = io.popen(("LUA_PATH=%s LUA_CPATH=%s DSN=%s PGB=%s %s %s 2>&1"):format(
      q(package.path), q(package.cpath), q(helper.dsn), helper.via_pgbouncer and "1" or "0",
      rawget(_G, "jit") and "luajit" or "lua5.4", script))
    local out = p:read("*a")
    p:close()
    os.remove(script)
    local seen, n, last, hwm_kb = out:match("^(%d+)%s+(%d+)%s+(%d+)%s+(%d+)")
    assert.is_truthy(seen, out)
    assert.are.equal(2000000, tonumber(seen))
    assert.are.equal(2000000, tonumber(n))
    assert.are.equal(2000000, tonumber(last))
    if os.getenv("DEBUG_HWM") then print("VmHWM kB", hwm_kb) end
    assert.is_true(tonumber(hwm_kb) < 50 * 1024, "peak memory " .. hwm_kb .. " kB")
  end)

  it("returns the server's error after rows already seen, and the connection stays usable", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    local seen = 0
    local n, msg, err = c:stream("SELECT 10 / (1000 - g) AS x FROM generate_series(1, 5000) g",
      function() seen = seen + 1 end)
    assert.is_nil(n)
    assert.are.equal("22012", err.sqlstate, msg)
    assert.are.equal("query", err.kind)
    assert.is_true(seen > 0 and seen < 1000, "rows seen before the error: " .. seen)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
    assert.are.equal(0, e:stats().invalidations)
    if not helper.via_pgbouncer then
      c = assert(e:connect())
      assert.are.equal(pid, c:backend_pid())
      c:close()
    end
  end)

  it("raises fn's error again after draining the rest, and the connection is pooled clean", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local pid = c:backend_pid()
    local ok, why = pcall(c.stream, c, "SELECT g FROM generate_series(1, 200000) g", function(row)
      if row.g == 10 then error("enough at 10") end
    end)
    assert.is_false(ok)
    assert.matches("enough at 10", tostring(why), 1, true)
    assert.are.equal("idle", c:transaction_status())
    assert.are.equal(7, assert(c:query("SELECT 7 AS seven"))[1].seven)
    c:close()
    assert.are.equal(0, e:stats().invalidations)
    c = assert(e:connect())
    if not helper.via_pgbouncer then assert.are.equal(pid, c:backend_pid()) end
    c:close()
  end)

  it("raises a decoder's error after draining the rest, and the connection stays usable", function()
    local e = helper.engine { decoders = { date = function(s) error("bad date " .. s) end } }
    local c = assert(e:connect())
    local ok, why = pcall(c.stream, c, "SELECT g, now()::date AS d FROM generate_series(1, 3000) g",
                          function() end)
    assert.is_false(ok)
    assert.matches("bad date", tostring(why), 1, true)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    assert.is_false(c:in_transaction())
    c:close()
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("discards a connection returned in the middle of a stream", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local c = assert(e:connect())
    local before = e:stats().invalidations
    local ok, why = pcall(c.stream, c, "SELECT g FROM generate_series(1, 100000) g", function()
      c:close()                                    -- given back mid-stream
    end)
    assert.is_false(ok)
    assert.matches("closed", tostring(why), 1, true)
    assert.are.equal(before + 1, e:stats().invalidations)
    assert.are.equal(1, assert(e:query("SELECT 1 AS one"))[1].one)
  end)

  it("is bounded by query_timeout, fn's time included, and refuses COPY", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, query_timeout = 0.3 }
    local c = assert(e:connect())
    local t0 = core.now()
    local n, msg, err = c:stream("SELECT g, pg_sleep(CASE WHEN g = 3 THEN 5 ELSE 0 END) " ..
                                 "FROM generate_series(1, 5) g", function() end)
    assert.is_nil(n)
    assert.are.equal("query_timeout", err.kind, msg)
    assert.is_true(core.now() - t0 < 3 * helper.time_scale)
    c:close()
    c = assert(e:connect())
    assert.has_error(function() c:stream("COPY (SELECT 1) TO STDOUT", print) end)
    assert.has_error(function() c:stream("SELECT 1", "not a function") end)
    assert.are.equal(1, assert(c:query("SELECT 1 AS one"))[1].one)
    c:close()
  end)
end)
