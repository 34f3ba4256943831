-- Observability against the real server, with known load and exact figures:
-- counters, gauges, capacity and histograms in stats(), health(), advise(),
-- echo and echo_pool through dbpool.log, and Prometheus text checked by
-- promtool.
local dbpool = require "dbpool"
local core = require "dbpool.core"
local metrics = require "dbpool.metrics"
local helper = require "helper"
local sys = require "system"

-- The bucket (1-based) whose upper bound is the first >= seconds.
local function bucket_of(seconds)
  for i, bound in ipairs(core.hist_bounds()) do
    if seconds <= bound then return i end
  end
  return #core.hist_bounds() + 1
end

describe("engine:stats()", function()
  it("counts N checkouts N times, and their connections once", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0 }
    for _ = 1, 25 do e:connect():close() end
    local s = e:stats()
    assert.are.same({ 25, 25, 25, 1, 1 },
      { s.checkouts, s.wait.count, s.hold.count, s.connects, s.connect.count })
    assert.are.same({ 0, 0, 0 }, { s.waits, s.timeouts, s.connect_failures })
    -- The first checkout waited for the connect; the other 24 for nothing.
    assert.are.equal(24, s.wait.buckets[1])
    assert.is_true(s.connect.sum > 0 and s.connect.sum <= s.wait.sum)
  end)

  it("counts one forced timeout once, as one wait", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.05 }
    local held = assert(e:connect())
    assert.is_nil((e:connect()))
    held:close()
    local s = e:stats()
    assert.are.same({ 1, 1, 1 }, { s.timeouts, s.waits, s.checkouts })
  end)

  it("puts a known hold time in the right histogram bucket", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    e:connect():close()                      -- connect outside the measured hold
    local c = assert(e:connect())
    sys.sleep(0.020)
    c:close()
    local s = e:stats()
    local want = bucket_of(0.020)            -- 2^25 ns: 16.8 ms < 20 ms <= 33.6 ms
    assert.are.equal(1, s.hold.buckets[want], "hold buckets: " .. table.concat(s.hold.buckets, ","))
    assert.are.equal(2, s.hold.count)
    local below = 0                          -- the quick one
    for i = 1, want - 1 do below = below + s.hold.buckets[i] end
    assert.are.equal(1, below)
    assert.is_true(s.hold.sum >= 0.020 and s.hold.sum < 0.0336)
    assert.is_true(s.hold.p99 > core.hist_bounds()[want - 1] and s.hold.p99 <= core.hist_bounds()[want])
  end)

  it("shows the gauges by DESIGN.md's names and SQLAlchemy's", function()
    local e = helper.engine { pool_size = 2, max_overflow = 2 }
    local a, b, c = e:connect(), e:connect(), e:connect()
    c:close()
    local s = e:stats()
    assert.are.same({ 1, 2, 3, 1, 0, 3 }, { s.idle, s.in_use, s.total, s.overflow, s.waiters, s.peak_in_use })
    assert.are.same({ s.idle, s.in_use, s.waiters }, { s.checkedin, s.checkedout, s.waiting })
    a:close(); b:close()
  end)

  it("reports capacity as pool_size + max_overflow, and math.huge when unbounded", function()
    local bounded = helper.engine { pool_size = 3, max_overflow = 4 }:stats().capacity
    assert.are.equal(7, bounded)
    if math.type then assert.are.equal("integer", math.type(bounded)) end
    assert.are.equal(3, helper.engine { pool_size = 3, max_overflow = 0 }:stats().capacity)
    assert.are.equal(math.huge, helper.engine { pool_size = 3, max_overflow = -1 }:stats().capacity)
    assert.are.equal(math.huge, helper.engine { pool_size = 0, max_overflow = 4 }:stats().capacity)
    -- Options not yet an engine are counted by the same C function.
    local policy = require "dbpool.policy"
    assert.are.equal(15, policy.capacity {})
    assert.are.equal(math.huge, policy.capacity { max_overflow = -1 })
  end)
end)

describe("engine:health()", function()
  it("turns degraded on utilization and back", function()
    local e = helper.engine { pool_size = 4, max_overflow = 0 }
    local held = { e:connect(), e:connect(), e:connect() }
    local h = e:health()
    assert.are.equal("degraded", h.status)
    assert.are.same({ "utilization 75% (3 of 4 connections in use) above 70%" }, h.reasons)
    for _, c in ipairs(held) do c:close() end
    h = e:health()
    assert.are.equal("healthy", h.status)
    assert.are.same({}, h.reasons)
  end)

  it("judges utilization against pool_size when overflow is unbounded", function()
    local e = helper.engine { pool_size = 2, max_overflow = -1 }
    local held = { e:connect(), e:connect(), e:connect() }
    assert.are.same({ "utilization 150% (3 of 2 connections in use) above 70%" },
      e:health { ping = false }.reasons)
    for _, c in ipairs(held) do c:close() end
    local unbounded = helper.engine { pool_size = 0 }
    local c = unbounded:connect()
    assert.are.equal("healthy", unbounded:health { ping = false }.status)
    c:close()
  end)

  it("turns degraded on p99 wait over the last window, and back", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0 }
    e:health()                                         -- start a window
    local a, b = e:connect(), e:connect()             -- both wait for a connect
    a:close(); b:close()
    local h = e:health { p99_wait = 0.000001, ping = false }
    assert.are.equal("degraded", h.status)
    assert.matches("^p99 checkout wait %d%.%d+ s over the last 2 checkouts above 0%.0000 s$", h.reasons[1])
    h = e:health { p99_wait = 0.000001, ping = false }  -- nothing waited since
    assert.are.equal("healthy", h.status)
  end)

  it("reports a timeout since the last check", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0, pool_timeout = 0.01 }
    e:health()
    local held = e:connect()
    assert.is_nil((e:connect()))
    held:close()
    local h = e:health()
    assert.are.equal("degraded", h.status)
    assert.are.same({ "1 checkout timed out since the last check" }, h.reasons)
  end)

  it("is down when no connection can be had, and with the breaker open", function()
    local e = helper.engine { dsn = "postgresql://postgres@127.0.0.1:1/x",
                              retry = { attempts = 1 }, breaker = { failures = 2, cooldown = 60 } }
    local h = e:health()
    assert.are.equal("down", h.status)
    assert.matches("^live check failed: could not connect", h.reasons[1])
    e:health()                                          -- second failed connect opens it
    h = e:health()
    assert.are.equal("down", h.status)
    assert.are.same({ "circuit breaker open: connects to the server are failing" }, h.reasons)
  end)

  it("rejects an unknown threshold by name", function()
    local e = helper.engine {}
    assert.has_error(function() e:health { p99 = 1 } end, "unknown health threshold 'p99'")
  end)
end)

describe("engine:advise()", function()
  it("applies Little's law to the load it saw", function()
    local e = helper.engine { pool_size = 5, max_overflow = 10 }
    for _ = 1, 20 do
      local c = e:connect()
      sys.sleep(0.005)
      c:close()
    end
    local a = e:advise()
    local s = e:stats()
    -- busy = rate x mean hold, both from the engine's own stats.
    assert.is_true(math.abs(a.busy - s.checkouts / s.age * s.hold.mean) < 0.05 * a.busy + 1e-9)
    assert.is_true(a.busy > 0 and a.busy < 1.5, "busy " .. a.busy)
    assert.are.equal(math.max(1, math.ceil(a.busy + 3 * math.sqrt(a.busy))), a.pool_size)
    assert.is_true(a.max_overflow >= math.ceil(a.pool_size / 2))
    assert.matches("Little's law", a.reason, 1, true)
    assert.matches("pool_size " .. a.pool_size .. " = busy", a.reason, 1, true)
  end)

  it("counts overflow connects and asks for a larger pool_size when they churn every second", function()
    local e = helper.engine { pool_size = 1, max_overflow = 3 }
    local steady = helper.engine { pool_size = 2, max_overflow = 3 }
    -- Two held at once against pool_size 1: each round opens one overflow
    -- connection, and the return that leaves pool_size idle closes the other.
    for _ = 1, 30 do
      local a, b = assert(e:connect()), assert(e:connect())
      b:close()
      a:close()
      local c, d = assert(steady:connect()), assert(steady:connect())
      d:close()
      c:close()
    end
    local s = e:stats()
    assert.is_true(s.overflow_connects >= 25, "overflow_connects " .. s.overflow_connects)
    assert.is_true(s.overflow_connects <= s.connects)
    assert.are.equal(0, steady:stats().overflow_connects)
    local a = e:advise()
    assert.is_true(a.overflow_connects_per_s >= 1, "churn " .. a.overflow_connects_per_s)
    assert.is_true(a.pool_size >= 2, "advised pool_size " .. a.pool_size)
    assert.matches("overflow connects/s", a.reason, 1, true)
    assert.is_nil(steady:advise().reason:find("overflow connects/s", 1, true))
    assert.matches('dbpool_overflow_connects_total{engine="' .. e.name .. '"} ' .. s.overflow_connects,
      dbpool.metrics(), 1, true)
  end)

  it("says so when there is nothing to go on", function()
    local a = helper.engine { pool_size = 3, max_overflow = 1 }:advise()
    assert.are.same({ 3, 1 }, { a.pool_size, a.max_overflow })
    assert.matches("nothing to go on", a.reason)
  end)
end)

describe("echo and echo_pool", function()
  it("log statements without parameters unless asked, and never a password", function()
    local e = helper.engine { echo = true }
    local p = helper.engine { echo = true, echo_params = true }
    local log = helper.capture_log(function()
      e:query("SELECT $1::text AS v", "secret-param")
      p:query("SELECT $1::text AS v, $2::int AS n", "shown", dbpool.null)
      e:query("ALTER ROLE no_such_role PASSWORD 'hunter2'")     -- fails; logged first
      e:query("ALTER ROLE no_such_role password  'it''s' VALID UNTIL 'infinity'")
      e:query("ALTER ROLE no_such_role PASSWORD E'h\\'unter3'")
      e:query("ALTER ROLE no_such_role PASSWORD $pw$hunter4$pw$")
      e:query("ALTER ROLE no_such_role PASSWORD $$hunter5$$")
      e:query("SELECT 'host=x password=hunter6' AS conninfo, $1::int AS n", 7)
      e:query("SELECT 1 AS password")
    end)
    local name, pname = e.name, p.name
    -- Every constant is a placeholder, numbered after the statement's own
    -- parameters (pg_stat_statements' form): no secret in any quoting.
    assert.are.same({
      "engine " .. name .. ": SELECT $1::text AS v  -- 1 params (not shown; set echo_params to show them)",
      "engine " .. pname .. ": SELECT $1::text AS v, $2::int AS n  -- params: $1='shown' $2=NULL",
      "engine " .. name .. ": ALTER ROLE no_such_role PASSWORD $1",
      "engine " .. name .. ": ALTER ROLE no_such_role password  $1 VALID UNTIL $2",
      "engine " .. name .. ": ALTER ROLE no_such_role PASSWORD $1",
      "engine " .. name .. ": ALTER ROLE no_such_role PASSWORD $1",
      "engine " .. name .. ": ALTER ROLE no_such_role PASSWORD $1",
      "engine " .. name .. ": SELECT $2 AS conninfo, $1::int AS n  -- 1 params (not shown; set echo_params to show them)",
      "engine " .. name .. ": SELECT $1 AS password",
    }, (function() local m = {} for i, l in ipairs(log) do m[i] = l.message end return m end)())
    for _, l in ipairs(log) do assert.is_nil(l.message:find("hunter", 1, true), l.message) end
  end)

  it("log pool events: connect, checkout, checkin, invalidate, timeout, breaker", function()
    local e = helper.engine { echo_pool = true, pool_size = 1, max_overflow = 0, pool_timeout = 0.01 }
    local log = helper.capture_log(function()
      local c = e:connect()
      e:connect()                            -- times out
      c:close()
      e:connect():invalidate()
    end)
    local msgs = {}
    for i, l in ipairs(log) do msgs[i] = l.message:gsub("^engine [^:]+: ", "") end
    assert.are.same({
      "checkout (connected)",
      "checkout timed out (waited): QueuePool limit of size 1 overflow 0 reached, connection timed out, timeout 0.01",
      "checkin",
      "checkout",
      "invalidate (closed)",
    }, msgs)
    local down = helper.engine { dsn = helper.app_dsn:gsub(":%d+/", ":1/"), echo_pool = true,
                                 retry = { attempts = 1 }, breaker = { failures = 1, cooldown = 60 } }
    log = helper.capture_log(function() down:connect(); down:connect() end)
    assert.matches("checkout failed %(circuit breaker opened%): could not connect", log[1].message)
    assert.matches("checkout refused: circuit breaker open after 1 failed connects", log[2].message)
    for _, l in ipairs(log) do assert.is_nil(l.message:find(helper.app_password, 1, true)) end
  end)
end)

describe("dbpool.metrics()", function()
  it("renders every engine in Prometheus text that promtool accepts", function()
    local e = helper.engine { name = helper.name("prom:a.b-c"), pool_size = 1 }
    e:connect():close()
    local text = dbpool.metrics()
    local esc = e.name
    assert.matches('dbpool_checkouts_total{engine="' .. esc:gsub("%p", "%%%0") .. '"} 1\n', text)
    assert.matches('# TYPE dbpool_hold_seconds histogram\n', text, 1, true)
    assert.matches('dbpool_hold_seconds_bucket{engine="' .. esc:gsub("%p", "%%%0")
      .. '",le="%+Inf"} 1\n', text)
    -- Every engine of the process, not only this Lua state's.
    helper.admin()
    text = dbpool.metrics()
    assert.matches('engine="spec_admin"', text, 1, true)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    local pipe = assert(io.popen("promtool check metrics < " .. path .. " 2>&1; echo rc=$?"))
    local out = pipe:read("*a")
    pipe:close()
    os.remove(path)
    assert.are.equal("rc=0\n", out, "promtool: " .. out)
  end)

  it("escapes label values as the text format says, and never emits invalid UTF-8", function()
    local label = metrics.label
    assert.are.equal('a\\"b\\\\c\\nd', label('a"b\\c\nd'))     -- \" \\ \n
    assert.are.equal("Кыргыз 😀", label("Кыргыз 😀"))            -- valid UTF-8 kept
    -- A byte that starts no valid sequence (stray, overlong, surrogate, cut
    -- short, past U+10FFFF) becomes the text \xHH, its backslash escaped.
    assert.are.equal("K\\\\xffG", label("K\255G"))
    assert.are.equal("\\\\xc0\\\\x80", label("\192\128"))
    assert.are.equal("\\\\xed\\\\xa0\\\\x80", label("\237\160\128"))
    assert.are.equal("ab\\\\xe2\\\\x82", label("ab\226\130"))
    assert.are.equal("\\\\xf4\\\\x90\\\\x80\\\\x80", label("\244\144\128\128"))
  end)

  it("has no engine whose name would need escaping: names are checked at creation", function()
    for _, bad in ipairs { 'prom "quoted"', "back\\slash", "new\nline", "K\255G", "KG/replica1" } do
      local ok, why = pcall(dbpool.engine, { name = bad, dsn = helper.dsn })
      assert.is_false(ok)
      assert.matches("option 'name' must be 1 to 63 ASCII letters", why, 1, true)
    end
  end)
end)