-- pool_size = "auto" (csrc/autosize.c): the pool's size follows its own
-- traffic within auto.min..auto.max, grows ahead of demand through the
-- refill thread, shrinks gradually after, and says so in status(), stats(),
-- metrics and (echo_pool) dbpool.log.  Against the throwaway server; every
-- timing is a condition waited on with a generous deadline.
local dbpool = require "dbpool"
local helper = require "spec.helper"
local sys = require "system"

local INTERVAL = 0.2

-- Waits until cond() is true; false after secs (scaled for slow runs).
local function eventually(cond, secs)
  local deadline = sys.monotime() + (secs or 20) * helper.time_scale
  while not cond() do
    if sys.monotime() > deadline then return false end
    sys.sleep(0.02)
  end
  return true
end

local function auto_engine(opts)
  local o = { pool_size = "auto", auto = { min = 1, max = 6, interval = INTERVAL },
              max_overflow = 2, pool_timeout = 10 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return helper.engine(o)
end

-- "concurrent load" from one Lua state: n connections checked out at once
-- (each checkout sees the ones before it in use), held a moment, returned;
-- repeated for secs.
local function load(e, n, secs)
  local deadline = sys.monotime() + secs
  repeat
    local held = {}
    for i = 1, n do held[i] = assert(e:connect()) end
    assert(held[1]:query("SELECT pg_sleep(0.01)"))
    for _, c in ipairs(held) do c:close() end
  until sys.monotime() > deadline
end

describe("pool_size = \"auto\"", function()
  it("starts at auto.min and warms it ahead of demand", function()
    local e = auto_engine { auto = { min = 2, max = 6, interval = INTERVAL } }
    assert.equals(2, e.pool:size())
    assert.is_true(eventually(function() return e.pool:checkedin() == 2 end),
      "the refill thread opens auto.min: " .. e.pool:status())
    assert.equals(2, helper.settled_backends(e.name, 2))
  end)

  it("grows under concurrent load and shrinks gradually after, within bounds", function()
    local e = auto_engine()
    local peak = 0
    local deadline = sys.monotime() + 20 * helper.time_scale
    while peak < 5 and sys.monotime() < deadline do
      load(e, 5, INTERVAL)
      peak = math.max(peak, e.pool:size())
    end
    assert.is_true(peak >= 5, "5 connections in use at once: size " .. peak)
    assert.is_true(peak <= 6, "never above auto.max")
    assert.matches("^Pool size: " .. e.pool:size() .. "  ", e.pool:status())
    -- Idle now: every step closes at most a quarter (at least one), so the
    -- connections go down one or two at a time, never all at once.
    local seen, last = {}, e.pool:stats().total
    assert.is_true(eventually(function()
      local total = e.pool:stats().total
      if total ~= last then seen[#seen + 1] = last - total; last = total end
      return total == 1
    end), "shrinks back to auto.min: " .. e.pool:status())
    assert.is_true(#seen >= 2, "in more than one step")
    for _, drop in ipairs(seen) do
      assert.is_true(drop <= 2, "a step closed " .. drop .. " of at most 6 (a quarter, rounded)")
    end
    assert.equals(1, e.pool:size())
    assert.equals(1, helper.settled_backends(e.name, 1))
  end)

  it("keeps capacity at auto.max + max_overflow, with QueuePool's timeout sentence", function()
    local e = auto_engine { auto = { min = 1, max = 2, interval = 60 }, max_overflow = 1,
                            pool_timeout = 0.2 }
    local held = {}
    for i = 1, 3 do held[i] = assert(e:connect()) end
    local stats = e.pool:stats()
    assert.equals(3, stats.capacity)
    assert.equals(1, e.pool:size())
    assert.equals(2, e.pool:overflow())        -- total - size, as QueuePool counts it
    local conn, msg, err = e:connect()
    assert.is_nil(conn)
    assert.equals("timeout", err.kind)
    assert.equals("QueuePool limit of size 1 overflow 2 reached, connection timed out, "
      .. "timeout 0.20", msg)
    for _, c in ipairs(held) do c:close() end
    assert.equals(2, e.pool:checkedin(), "returns are kept up to auto.max")
  end)

  it("counts resizes in stats and metrics, with the inputs", function()
    local e = auto_engine()
    assert.is_true(eventually(function()
      load(e, 4, INTERVAL)
      return e.pool:stats().resizes >= 1
    end))
    local s = e.pool:stats()
    assert.same({ 1, 6, INTERVAL }, { s.autosize.min, s.autosize.max, s.autosize.interval })
    assert.is_number(s.autosize.busy)
    assert.is_true(s.autosize.p99 >= 0 and s.autosize.p99 <= 6)
    local text = dbpool.metrics()
    local label = ('engine="%s"'):format(e.name)
    assert.matches("dbpool_resizes_total{" .. label .. "} %d+", text)
    assert.matches("dbpool_pool_size{" .. label .. "} %d+", text)
    assert.matches("dbpool_autosize_busy_connections{" .. label .. "} [%d.e+-]+", text)
    assert.matches("dbpool_autosize_p99_in_use_connections{" .. label .. "} %d+", text)
  end)

  it("logs every resize through dbpool.log with echo_pool: rate, hold, p99, old -> new", function()
    local e = auto_engine { echo_pool = true }
    local lines = helper.capture_log(function()
      eventually(function()
        load(e, 4, INTERVAL)
        return e.pool:size() >= 4
      end)
      load(e, 1, 0.01)                   -- one more echo_pool event after the last step
    end)
    local found
    for _, l in ipairs(lines) do
      if l.message:find("pool_size auto 1 -> ", 1, true) then found = l.message end
    end
    assert.is_string(found, "a resize from 1 was logged")
    assert.matches("^engine " .. e.name:gsub("%p", "%%%0") .. ": pool_size auto 1 %-> %d+ "
      .. "%([%d.]+ checkouts/s x [%d.]+ s mean hold = [%d.]+ busy; p99 in use %d+; closed 0 idle",
      found)
  end)

  it("logs the refill thread's resizes at the next stats() or metrics() too, not only at a checkout", function()
    local e = auto_engine { echo_pool = true }
    local held, lines, mark, saved = {}, {}, nil, dbpool.log
    dbpool.log = function(message) lines[#lines + 1] = message end
    local ok, err = pcall(function()
      for i = 1, 3 do held[i] = assert(e:connect()) end   -- in use through the next steps
      assert.is_true(eventually(function() return e.pool:size() >= 3 end), "size " .. e.pool:size())
      mark = #lines                      -- the last checkout's events and before
      dbpool.metrics()
    end)
    for _, c in ipairs(held) do c:close() end
    dbpool.log = saved
    assert(ok, err)
    local found
    for i = mark + 1, #lines do
      if lines[i]:find("pool_size auto 1 -> ", 1, true) then found = lines[i] end
    end
    assert.is_string(found, "the resize from 1 logged by dbpool.metrics(), with no checkout")
  end)

  it("keeps min_idle as its floor when it is above auto.min (pre-warmed, never trimmed)", function()
    local e = auto_engine { min_idle = 3, auto = { min = 1, max = 6, interval = INTERVAL } }
    assert.equals(3, e.pool:size())
    assert.is_true(eventually(function() return e.pool:checkedin() == 3 end), e.pool:status())
    local s = e.pool:stats().autosize
    sys.sleep(INTERVAL * 3 * helper.time_scale)          -- steps with nothing in use
    assert.is_true(eventually(function()
      return e.pool:stats().autosize.window ~= s.window or e.pool:stats().resizes > 0
    end), "a step ran")
    assert.are.same({ 3, 3 }, { e.pool:size(), e.pool:checkedin() }, e.pool:status())
  end)

  it("never sizes above the budget's limit", function()
    local e = auto_engine()
    local b = assert(dbpool.budget { engines = { e }, max_connections = 9,
                                     superuser_reserved_connections = 0, apply = true })
    -- 9 available, max_overflow 2 on top: the size may be at most 7, and
    -- auto.max 6 is lower: the limit is 6.  With 5 it would bind.
    assert.equals(6, b.size_limits[e.name])
    b = assert(dbpool.budget { engines = { e }, max_connections = 5,
                               superuser_reserved_connections = 0, apply = true })
    assert.equals(3, b.size_limits[e.name])
    for _ = 1, 10 do load(e, 5, INTERVAL / 4) end
    assert.is_true(eventually(function() return e.pool:stats().autosize.limit == 3 end))
    load(e, 5, INTERVAL * 2)
    assert.is_true(e.pool:size() <= 3, "size " .. e.pool:size() .. " under the limit 3")
  end)

  it("opens and keeps no more than the budget's limit allows, whatever auto.max says", function()
    local e = helper.engine { pool_size = "auto", auto = { min = 1, max = 5, interval = 60 },
                              max_overflow = 1, pool_timeout = 0.2 }
    e.pool:size_limit(1)
    local held = { assert(e:connect()), assert(e:connect()) }
    local conn, msg = e:connect()                  -- 1 + max_overflow 1 are open
    assert.is_nil(conn)
    assert.matches("QueuePool limit of size 1 overflow 1 reached", msg, 1, true)
    for _, c in ipairs(held) do c:close() end
    assert.are.equal(1, e.pool:checkedin(), "returns kept up to the limit, not auto.max")
    local s = e:stats()
    assert.are.equal(2, s.capacity, "stats().capacity is the limit + max_overflow, as checkouts find")
    assert.are.equal(1, s.autosize.limit, "stats().autosize.limit, before any step")
    assert.matches('dbpool_autosize_limit_connections{engine="' .. e.name .. '"} 1\n',
                   dbpool.metrics(), 1, true)
  end)

  it("is advised on auto.max by engine:advise(), never as a fixed pool_size", function()
    local e = helper.engine { pool_size = "auto", auto = { min = 1, max = 4, interval = 60 },
                              max_overflow = 8, pool_timeout = 5 }
    local fresh = e:advise()
    assert.are.same({ "auto", 1, 4 }, { fresh.pool_size, fresh.auto.min, fresh.auto.max })
    local held = {}
    for i = 1, 10 do held[i] = assert(e:connect()) end
    for _, c in ipairs(held) do c:close() end
    local a = e:advise()
    assert.are.equal("auto", a.pool_size)
    assert.is_true(a.auto.max >= 1 and a.auto.min == 1, a.reason)
    assert.matches("auto.max " .. a.auto.max .. " = busy", a.reason, 1, true)
    assert.matches('now: pool_size "auto" at %d+, auto.min 1, auto.max 4, max_overflow 8', a.reason)
  end)

  it("is refused by the production policy when max_overflow < 2 x auto.max", function()
    local ok, violations = dbpool.check({ name = "x", dsn = "y", pool_size = "auto",
      auto = { min = 10, max = 15 }, max_overflow = 20 }, "production")
    assert.is_false(ok)
    local text = table.concat(violations, "\n")
    assert.matches("x: max_overflow is 20, must be at least 2 x pool_size %(auto.max%) %(30%)", text)
    ok = dbpool.check({ name = "x", dsn = "y", pool_size = "auto", auto = { min = 10, max = 15 },
      max_overflow = 30, pool_pre_ping = true, pool_recycle = 3600, pool_timeout = 30 },
      "production")
    assert.is_true(ok)
  end)

  it("holds its size while every connection stays checked out through whole intervals", function()
    local e = auto_engine { auto = { min = 1, max = 6, interval = INTERVAL } }
    local held = {}
    for i = 1, 4 do held[i] = assert(e:connect()) end
    -- No checkout completes while they are held: the steps see them in use.
    sys.sleep(INTERVAL * 4 * helper.time_scale)
    assert.is_true(e.pool:size() >= 4, "size " .. e.pool:size() .. " with 4 held")
    for _, c in ipairs(held) do c:close() end
  end)

  it("opens nothing more once the engine is removed (dbpool.remove)", function()
    local app = "dbpool-spec-" .. helper.name("removed")
    local e = auto_engine { auto = { min = 3, max = 6, interval = 0.05 }, application_name = app }
    assert.is_true(eventually(function() return helper.backends(app) == 3 end))
    local c = assert(e:connect())               -- checked out across the remove
    dbpool.remove(e.name)
    c:close()
    sys.sleep(0.5 * helper.time_scale)          -- ten intervals
    assert.is_true(eventually(function() return helper.backends(app) <= 1 end),
      "backends after remove: " .. helper.backends(app))
    sys.sleep(0.3 * helper.time_scale)
    assert.is_true(helper.backends(app) <= 1, "refilled after remove: " .. helper.backends(app))
  end)

  it("is a different engine from a fixed pool of the same size", function()
    local name = helper.name("same")
    auto_engine { name = name }
    local ok, err = pcall(helper.engine, { name = name, pool_size = 6, max_overflow = 2,
                                          pool_timeout = 10 })
    assert.is_false(ok)
    assert.matches("pool_size", err)
  end)
end)
