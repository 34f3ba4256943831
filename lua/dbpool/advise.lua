-- engine:advise() -> { pool_size =, max_overflow =, busy =, rate =, mean_hold =,
--                      p99_wait =, timeouts =, overflow_connects_per_s =, reason = "..." }
--   (for a pool_size = "auto" engine: pool_size = "auto" and auto = { min =, max = },
--   the advice being for auto.max)
--
-- Sizing from the engine's own numbers since it was created.  Little's law:
-- busy connections on average = checkout rate x mean hold time.  pool_size
-- is then sized by the square-root staffing rule, busy + 3 x sqrt(busy),
-- which keeps the chance that a checkout has to wait small for random
-- (Poisson-like) arrivals; max_overflow covers the peak actually seen above
-- that, and at least half of pool_size for bursts not seen yet.  Overflow
-- connections are closed on return while pool_size are idle, so overflow
-- connects every second or more mean a steady load above pool_size paying a
-- connect per checkout: pool_size is then raised to cover the peak in use.
local advise = {}

local function ceil(x) return math.floor(x + 0.999999) end

function advise.advise(engine)
  local s = engine.pool:stats()
  local hold, wait = s.hold, s.wait
  if (hold.count == 0 or s.age <= 0) and s.autosize then
    return {
      pool_size = "auto", auto = { min = s.autosize.min, max = s.autosize.max },
      max_overflow = s.max_overflow, busy = 0, rate = 0, mean_hold = 0,
      p99_wait = wait.p99, timeouts = s.timeouts,
      reason = "no connection has been checked out and returned yet: nothing to go on, "
        .. "keep auto.max " .. s.autosize.max .. " and max_overflow " .. s.max_overflow,
    }
  end
  if hold.count == 0 or s.age <= 0 then
    return {
      pool_size = s.size, max_overflow = s.max_overflow, busy = 0, rate = 0, mean_hold = 0,
      p99_wait = wait.p99, timeouts = s.timeouts,
      reason = "no connection has been checked out and returned yet: nothing to go on, "
        .. "keep pool_size " .. s.size .. " and max_overflow " .. s.max_overflow,
    }
  end
  local rate = s.checkouts / s.age
  local busy = rate * hold.mean
  local size = math.max(1, ceil(busy + 3 * math.sqrt(busy)))
  local churn = (s.overflow_connects or 0) / s.age      -- overflow connects per second
  if churn >= 1 and s.size > 0 then
    size = math.max(size, s.peak_in_use, s.size + 1)
  end
  local overflow = math.max(ceil(size / 2), s.peak_in_use - size)
  local pressure
  if s.timeouts > 0 then
    pressure = ("%d checkouts timed out and p99 wait is %.4f s: the pool was too small at peaks")
      :format(s.timeouts, wait.p99)
  elseif wait.p99 > 0.01 then
    pressure = ("p99 wait is %.4f s: checkouts queue at peaks"):format(wait.p99)
  else
    pressure = ("p99 wait is %.4f s: checkouts hardly wait"):format(wait.p99)
  end
  if churn >= 1 and s.size > 0 then
    pressure = pressure .. ("; %.1f overflow connects/s: a steady load above pool_size %d "
      .. "opens and closes a connection per checkout, so pool_size covers the peak of %d in use")
      :format(churn, s.size, s.peak_in_use)
  end
  local a = s.autosize
  if a then
    -- pool_size = "auto" sizes itself within auto.max: the advice is for
    -- that bound, and the size stays "auto".
    return {
      pool_size = "auto", auto = { min = a.min, max = math.max(size, a.min) },
      max_overflow = overflow, busy = busy, rate = rate,
      mean_hold = hold.mean, p99_wait = wait.p99, timeouts = s.timeouts,
      overflow_connects_per_s = churn,
      reason = ("%.2f checkouts/s x %.4f s mean hold = %.2f connections busy on average "
        .. "(Little's law over %.1f s); auto.max %d = busy + 3 x sqrt(busy), so that at its "
        .. "most the size lets a checkout rarely wait; max_overflow %d covers the peak of %d "
        .. "in use seen, and at least half of auto.max; %s (now: pool_size \"auto\" at %d, "
        .. "auto.min %d, auto.max %d, max_overflow %d)")
        :format(rate, hold.mean, busy, s.age, math.max(size, a.min), overflow, s.peak_in_use,
          pressure, s.size, a.min, a.max, s.max_overflow),
    }
  end
  return {
    pool_size = size, max_overflow = overflow, busy = busy, rate = rate,
    mean_hold = hold.mean, p99_wait = wait.p99, timeouts = s.timeouts,
    overflow_connects_per_s = churn,
    reason = ("%.2f checkouts/s x %.4f s mean hold = %.2f connections busy on average "
      .. "(Little's law over %.1f s); pool_size %d = busy + 3 x sqrt(busy), so that a "
      .. "checkout rarely waits; max_overflow %d covers the peak of %d in use seen, and at "
      .. "least half of pool_size; %s (now: pool_size %d, max_overflow %d)")
      :format(rate, hold.mean, busy, s.age, size, overflow, s.peak_in_use, pressure,
        s.size, s.max_overflow),
  }
end

return advise
