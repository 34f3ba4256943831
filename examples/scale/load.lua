-- examples/scale/load.lua: wrk's script for examples/scale/run.sh.
--   wrk -t2 -c10000 -d20s --timeout 30s -s examples/scale/load.lua http://127.0.0.1:PORT
-- A mixed workload: 70% reads by id, 20% 20-row lists, 10% writes (a
-- transaction).  Counts answers per HTTP status and checks every answer's
-- X-Elapsed against its X-Deadline (scale.lua); done() prints one line of
-- key=value pairs, "scale-result ...", that run.sh reads.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  math.randomseed(id * 7919 + os.time())
  counts, max_elapsed, late, untimed = {}, 0, 0, 0
end

function request()
  local r = math.random(100)
  local path
  if r <= 70 then
    path = "/item/" .. math.random(5000)
  elseif r <= 90 then
    path = "/items/" .. math.random(0, 49)
  else
    path = "/order/" .. math.random(5000)
  end
  return wrk.format("GET", path)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  local elapsed, deadline = tonumber(headers["X-Elapsed"]), tonumber(headers["X-Deadline"])
  if not elapsed or not deadline then
    untimed = untimed + 1
    return
  end
  if elapsed > max_elapsed then max_elapsed = elapsed end
  if elapsed > deadline then late = late + 1 end
end

function done(summary, latency, requests)
  local status, max_e, n_late, n_untimed = {}, 0, 0, 0
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("counts")) do status[code] = (status[code] or 0) + n end
    max_e = math.max(max_e, t:get("max_elapsed"))
    n_late = n_late + t:get("late")
    n_untimed = n_untimed + t:get("untimed")
  end
  local codes = {}
  for code, n in pairs(status) do codes[#codes + 1] = code .. ":" .. n end
  table.sort(codes)
  local e = summary.errors
  io.write(("scale-result requests=%d duration_s=%.3f rps=%.1f p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f max_ms=%.1f"
    .. " connect_errors=%d read_errors=%d write_errors=%d timeouts=%d non2xx=%d status=%s"
    .. " max_elapsed_s=%.4f late=%d untimed=%d\n"):format(
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.timeout, e.status,
    #codes > 0 and table.concat(codes, ",") or "-", max_e, n_late, n_untimed))
end
