-- examples/scale/report.lua: reads the JSON of /scale/stats (scale.lua) for
-- examples/scale/run.sh.  Plain Lua 5.4 (or LuaJIT) with lua-cjson.
--   report.lua sample STATS      one line: in-use and counters now (the sampler)
--   report.lua idle STATS        exit 0 when no pool has a connection in use
--   report.lua delta BEFORE AFTER key=value lines: one phase's dbpool figures
local json = require "cjson"

local function load(path)
  local f = assert(io.open(path))
  local text = f:read("a")
  f:close()
  return json.decode(text)
end

local function num(v) return tonumber(v) or 0 end

-- The q-quantile of the difference of two histograms, as the bucket it
-- falls in: lo, hi (seconds; hi = math.huge past the last bound), total.
-- Not interpolated: dbpool's buckets double (csrc/metrics.c), so a point
-- inside one would claim a precision the counts do not have (a p95 of
-- "11,345 ms" against a 10 s pool_timeout was one).
local function quantile(bounds, before, after, q)
  local diff, total = {}, 0
  for i = 1, #after.buckets do
    diff[i] = num(after.buckets[i]) - num(before and before.buckets[i])
    total = total + diff[i]
  end
  if total == 0 then return 0, 0, 0 end
  local rank, seen = q * total, 0
  for i, n in ipairs(diff) do
    if n > 0 and seen + n >= rank then
      if i > #bounds then return bounds[#bounds], math.huge, total end
      return i == 1 and 0 or bounds[i - 1], bounds[i], total
    end
    seen = seen + n
  end
  return bounds[#bounds], math.huge, total
end

-- 12345.6 -> "12,346"
local function thousands(x)
  local s = ("%.0f"):format(x)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

-- A checkout wait quantile for the table: the bucket's bound, said to be
-- one, and clamped to pool_timeout (no checkout waits longer: it times out).
local function wait_text(lo, hi, total, pool_timeout)
  if total == 0 then return "no waits" end
  local lo_ms, hi_ms, cap_ms = lo * 1000, hi * 1000, pool_timeout * 1000
  if hi_ms > cap_ms and lo_ms < cap_ms then
    return ("%s-%s (pool_timeout; bucket to %s)"):format(thousands(lo_ms), thousands(cap_ms),
      hi == math.huge and "inf" or thousands(hi_ms))
  end
  if lo_ms < 1 then return ("≤ %.3f"):format(hi_ms) end
  if hi_ms < 100 then return ("%.1f-%.1f"):format(lo_ms, hi_ms) end
  return ("%s-%s"):format(thousands(lo_ms), thousands(hi_ms))
end

-- The app's latency histogram (scale.lua `record`): bucket k's upper bound
-- in ms is 10^(k/step); the last one is open.
local function app_latency(lat, a, b, q)
  local total, diff = 0, {}
  for k = 0, lat.top do
    diff[k] = num(b.counts["lat:" .. k]) - num(a.counts["lat:" .. k])
    total = total + diff[k]
  end
  if total == 0 then return nil, 0 end
  local rank, seen = q * total, 0
  for k = 0, lat.top do
    if diff[k] > 0 and seen + diff[k] >= rank then
      if k == lat.top then return math.huge, total end
      return 10 ^ (k / lat.step), total
    end
    seen = seen + diff[k]
  end
  return math.huge, total
end

-- Two histograms as one (the primary's and the replica's waits together).
local function merged(a, b)
  local m = { buckets = {} }
  for i = 1, #a.buckets do m.buckets[i] = num(a.buckets[i]) + num(b and b.buckets[i]) end
  return m
end

local cmd = arg[1]
if cmd == "sample" then
  local s = load(arg[2])
  local p, r = s.pools.primary, s.pools.replica1 or {}
  io.write(("%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n"):format(num(p.in_use), num(r.in_use),
    num(p.waiters) + num(r.waiters), num(p.checkouts), num(r.checkouts), num(p.read_fallbacks),
    num(p.timeouts) + num(r.timeouts), tostring(r.breaker or "-")))
elseif cmd == "idle" then         -- exit 0 when nothing is checked out in either pool
  local s = load(arg[2])
  local busy = 0
  for _, p in pairs(s.pools) do busy = busy + num(p.in_use) + num(p.waiters) end
  os.exit(busy == 0 and 0 or 1)
elseif cmd == "delta" then
  local a, b = load(arg[2]), load(arg[3])
  local out = {}
  local function put(k, v)
    if type(v) == "number" and v == math.floor(v) then v = ("%d"):format(v) end
    out[#out + 1] = k .. "=" .. tostring(v)
  end
  local pa, pb = a.pools.primary, b.pools.primary
  local ra, rb = a.pools.replica1 or {}, b.pools.replica1 or {}
  local function d(x, y, k) return num(y[k]) - num(x[k]) end
  put("checkouts_primary", d(pa, pb, "checkouts"))
  put("checkouts_replica", d(ra, rb, "checkouts"))
  put("pool_timeouts", d(pa, pb, "timeouts") + d(ra, rb, "timeouts"))
  put("query_timeouts", d(pa, pb, "query_timeouts") + d(ra, rb, "query_timeouts"))
  put("waits", d(pa, pb, "waits") + d(ra, rb, "waits"))
  put("read_fallbacks", d(pa, pb, "read_fallbacks"))
  put("connect_failures", d(pa, pb, "connect_failures") + d(ra, rb, "connect_failures"))
  local pool_timeout = num(b.options and b.options.pool_timeout)
  local lo, hi, n = quantile(b.bounds, merged(pa.wait, ra.wait), merged(pb.wait, rb.wait), 0.95)
  put("wait_p95_ms", wait_text(lo, hi, n, pool_timeout))
  put("wait_p95_lo_ms", ("%.3f"):format(lo * 1000))
  put("wait_p95_hi_ms", hi == math.huge and "inf" or ("%.3f"):format(hi * 1000))
  put("wait_n", n)
  local plo, phi, pn = quantile(b.bounds, pa.wait, pb.wait, 0.95)
  put("wait_p95_primary_ms", wait_text(plo, phi, pn, pool_timeout))
  if ra.wait and rb.wait then
    local rlo, rhi, rn = quantile(b.bounds, ra.wait, rb.wait, 0.95)
    put("wait_p95_replica_ms", wait_text(rlo, rhi, rn, pool_timeout))
  end
  -- The app's latency over every answer of the phase, those that ended after
  -- wrk had gone included: each quantile is its bucket's upper bound (the
  -- buckets are 12% wide), late per route, the slowest answer (the workers'
  -- keys were reset at the phase's start).
  if b.latency then
    local total = 0
    for _, q in ipairs({ 50, 95, 99 }) do
      local v
      v, total = app_latency(b.latency, a, b, q / 100)
      put("app_p" .. q .. "_ms", not v and "-" or v == math.huge and "inf" or ("%.0f"):format(v))
    end
    put("app_answers", total)
    local max_ms = 0
    for k, v in pairs(b.counts) do
      if k:match("^max_ms:") and num(v) > max_ms then max_ms = num(v) end
    end
    put("app_max_ms", ("%.0f"):format(max_ms))
    put("app_late_read", num(b.counts.late_read) - num(a.counts.late_read))
    put("app_late_write", num(b.counts.late_write) - num(a.counts.late_write))
  end
  -- The app's own count of answers by outcome, and the consistency check:
  -- every successful read ran one statement and every write four (BEGIN,
  -- INSERT, UPDATE, COMMIT), so with no failures the pools' statement
  -- counters must match the answers exactly (min_idle's warm-up checkouts
  -- run none); dbpool's timeouts must be the answers of kind timeout; and
  -- after the drain nothing is checked out and nobody waits.
  local function dc(k) return num(b.counts[k]) - num(a.counts[k]) end
  -- Failed answers by kind, and by route: "failed_<route>_<kind>".
  local by_kind, by_route, n_failed = {}, { read = 0, write = 0 }, 0
  for k in pairs(b.counts) do
    local dv = dc(k)
    local route, kind = k:match("^failed_(%a+)_(.+)$")
    if route and dv ~= 0 then
      by_kind[kind] = (by_kind[kind] or 0) + dv
      by_route[route] = (by_route[route] or 0) + dv
      n_failed = n_failed + dv
    end
  end
  local failed = {}
  for kind, dv in pairs(by_kind) do failed[#failed + 1] = ("%s:%d"):format(kind, dv) end
  table.sort(failed)
  put("app_failed_read", by_route.read)
  put("app_failed_write", by_route.write)
  put("app_ok_read", dc("ok_read"))
  put("app_ok_write", dc("ok_write"))
  put("app_failed", #failed > 0 and table.concat(failed, ",") or "none")
  local statements = d(pa, pb, "queries") + d(ra, rb, "queries")
  local expected = dc("ok_read") + 4 * dc("ok_write")
  put("statements", statements)
  put("statements_expected", expected)
  local in_use = num(pb.in_use) + num(rb.in_use)
  local waiters = num(pb.waiters) + num(rb.waiters)
  put("in_use_after", in_use)
  put("waiters_after", waiters)
  local timeouts_match = d(pa, pb, "timeouts") + d(ra, rb, "timeouts") >= (by_kind.timeout or 0)
  -- What was checked is said with the verdict: with failed answers the
  -- statements can only be at least those the successes imply (a failed
  -- answer may have run some), not equal.
  local checks, done = {}, {}
  done[#done + 1] = "idle after"
  if in_use ~= 0 then checks[#checks + 1] = "in use after the drain" end
  if waiters ~= 0 then checks[#checks + 1] = "waiters after the drain" end
  if n_failed == 0 then
    done[#done + 1] = "statements ="
    if statements ~= expected then checks[#checks + 1] = "statements differ" end
  else
    done[#done + 1] = "statements ≥"
    if statements < expected then checks[#checks + 1] = "fewer statements than the answers imply" end
  end
  done[#done + 1] = "pool timeouts ≥ timeout answers"
  if not timeouts_match then checks[#checks + 1] = "fewer pool timeouts than timeout answers" end
  put("consistent", #checks == 0 and ("yes: " .. table.concat(done, ", "))
                    or ("NO: " .. table.concat(checks, "; ")))
  io.write(table.concat(out, "\n"), "\n")
else
  io.stderr:write("usage: report.lua sample STATS | delta BEFORE AFTER\n")
  os.exit(2)
end
