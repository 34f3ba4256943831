-- engine:health(thresholds) -> { status = "healthy" | "degraded" | "down",
--                                reasons = { sentence, ... }, checked = {...} }
--
-- Down: the circuit breaker is open, or a live check failed (no connection
-- could be had, or the ping on it failed).  Degraded: utilization, the p99
-- of checkout waits, or checkout timeouts over their thresholds.  Waits and
-- timeouts are judged over the window since the previous health() call of
-- this engine (process-wide), as a monitor polling every N seconds sees the
-- last N seconds; utilization is the state now.
local health = {}

-- dbpool.health_defaults: change them process-wide, or pass a table to
-- engine:health() for one call.
health.defaults = {
  utilization = 0.70,   -- checked out / capacity above this: degraded
  p99_wait = 0.100,     -- seconds; p99 of checkout waits in the window above this: degraded
  timeouts = 0,         -- checkout timeouts in the window above this: degraded
  ping = true,          -- check out an idle connection without waiting and ping it
}

-- Capacity for utilization: stats.capacity (pool_size + max_overflow, as
-- the core counts it); when that is unbounded (math.huge), pool_size if set
-- (above it the pool is over its planned size), else nil: nothing to judge.
local function capacity(stats)
  if stats.capacity ~= math.huge then return stats.capacity end
  return stats.size > 0 and stats.size or nil
end

-- How the ping checks a connection out without queueing for one: under
-- nginx dbpool's init sets dbpool.ngx's, which yields for a connect or a
-- pre-ping instead of blocking the worker.
function health.try_checkout(pool) return pool:try_connect() end

local function ping(pool)
  local conn, msg, err = health.try_checkout(pool)
  if not conn then
    if err.kind == "again" then return true end      -- all busy: utilization says so
    return false, msg
  end
  local ok, pmsg = conn:ping()
  conn:close()
  return ok ~= nil, pmsg
end

function health.check(engine, thresholds)
  local t = {}
  for k, v in pairs(health.defaults) do t[k] = v end
  if thresholds ~= nil and type(thresholds) ~= "table" then
    error("bad argument #1 to 'health' (table of thresholds expected, got " .. type(thresholds) .. ")", 3)
  end
  for k, v in pairs(thresholds or {}) do
    if t[k] == nil then error("unknown health threshold '" .. tostring(k) .. "'", 3) end
    if type(v) ~= type(t[k]) then
      error(("health threshold '%s' must be a %s, got %s"):format(k, type(t[k]), type(v)), 3)
    end
    t[k] = v
  end

  local pool = engine.pool
  local window = pool:wait_window()
  local stats = engine:stats()          -- under nginx: the whole instance
  local down, degraded = {}, {}

  if stats.breaker ~= "closed" then
    down[#down + 1] = ("circuit breaker %s: connects to the server are failing"):format(stats.breaker)
  end
  if t.ping and stats.breaker == "closed" then
    local ok, err = ping(pool)
    if not ok then down[#down + 1] = "live check failed: " .. tostring(err) end
    pool:wait_window()      -- the ping's own checkout belongs to no window
  end

  local cap = capacity(stats)
  local util = cap and stats.in_use / cap or 0
  if cap and util > t.utilization then
    degraded[#degraded + 1] = ("utilization %d%% (%d of %d connections in use) above %d%%")
      :format(math.floor(util * 100 + 0.5), stats.in_use, cap, math.floor(t.utilization * 100 + 0.5))
  end
  if window.count > 0 and window.p99 > t.p99_wait then
    degraded[#degraded + 1] = ("p99 checkout wait %.4f s over the last %d checkouts above %.4f s")
      :format(window.p99, window.count, t.p99_wait)
  end
  local new_timeouts = window.timeouts
  if new_timeouts > t.timeouts then
    degraded[#degraded + 1] = ("%d checkout%s timed out since the last check")
      :format(new_timeouts, new_timeouts == 1 and "" or "s")
  end

  local status, reasons = "healthy", {}
  if #down > 0 then
    status = "down"
    for _, r in ipairs(down) do reasons[#reasons + 1] = r end
  elseif #degraded > 0 then
    status = "degraded"
  end
  for _, r in ipairs(degraded) do reasons[#reasons + 1] = r end
  return {
    status = status,
    reasons = reasons,
    checked = { utilization = util, p99_wait = window.p99, waits_seen = window.count,
                timeouts = new_timeouts, breaker = stats.breaker },
  }
end

return health
