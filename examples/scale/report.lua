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

-- The q-quantile of the difference of two histograms, interpolated inside
-- its bucket the way csrc/metrics.c (dbp_hist_quantile) does.
local function quantile(bounds, before, after, q)
  local diff, total = {}, 0
  for i = 1, #after.buckets do
    diff[i] = num(after.buckets[i]) - num(before and before.buckets[i])
    total = total + diff[i]
  end
  if total == 0 then return 0, 0 end
  local rank, seen = q * total, 0
  for i, n in ipairs(diff) do
    if n > 0 and seen + n >= rank then
      if i > #bounds then return bounds[#bounds], total end
      local lo, hi = i == 1 and 0 or bounds[i - 1], bounds[i]
      return lo + (hi - lo) * ((rank - seen) / n), total
    end
    seen = seen + n
  end
  return bounds[#bounds], total
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
  local q, n = quantile(b.bounds, merged(pa.wait, ra.wait), merged(pb.wait, rb.wait), 0.95)
  put("wait_p95_ms", ("%.2f"):format(q * 1000))
  put("wait_n", n)
  local qp = quantile(b.bounds, pa.wait, pb.wait, 0.95)
  put("wait_p95_primary_ms", ("%.2f"):format(qp * 1000))
  if ra.wait and rb.wait then
    put("wait_p95_replica_ms", ("%.2f"):format(quantile(b.bounds, ra.wait, rb.wait, 0.95) * 1000))
  end
  -- The app's own count of answers by outcome, and the consistency check:
  -- every successful read ran one statement and every write four (BEGIN,
  -- INSERT, UPDATE, COMMIT), so with no failures the pools' statement
  -- counters must match the answers exactly (min_idle's warm-up checkouts
  -- run none); dbpool's timeouts must be the answers of kind timeout; and
  -- after the drain nothing is checked out and nobody waits.
  local function dc(k) return num(b.counts[k]) - num(a.counts[k]) end
  local failed, n_failed = {}, 0
  for k in pairs(b.counts) do
    local dv = dc(k)
    if k:match("^failed_") and dv ~= 0 then
      failed[#failed + 1] = k:gsub("^failed_", "") .. ":" .. dv
      n_failed = n_failed + dv
    end
  end
  table.sort(failed)
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
  local timeouts_match = d(pa, pb, "timeouts") + d(ra, rb, "timeouts") >= dc("failed_timeout")
  local checks = {}
  if in_use ~= 0 then checks[#checks + 1] = "in use after the drain" end
  if waiters ~= 0 then checks[#checks + 1] = "waiters after the drain" end
  if n_failed == 0 and statements ~= expected then checks[#checks + 1] = "statements differ" end
  if not timeouts_match then checks[#checks + 1] = "fewer pool timeouts than timeout answers" end
  put("consistent", #checks == 0 and "yes" or ("NO: " .. table.concat(checks, "; ")))
  io.write(table.concat(out, "\n"), "\n")
else
  io.stderr:write("usage: report.lua sample STATS | delta BEFORE AFTER\n")
  os.exit(2)
end
