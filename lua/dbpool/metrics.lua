-- dbpool.metrics() -> every engine of the process in Prometheus' text
-- exposition format (version 0.0.4): counters with _total, gauges, and the
-- wait/hold/connect histograms with cumulative _bucket{le=...}, _sum and
-- _count; each sample labelled engine="<name>" (and worker="<id>" under
-- nginx: one series per worker of the instance).  Families are grouped, as
-- the format requires; engines appear in creation order.
local core = require "dbpool.core"

local counters = {
  { "checkouts", "Connections handed out." },
  { "waits", "Checkouts that had to queue for a connection." },
  { "timeouts", "Checkouts that gave up after pool_timeout." },
  { "connects", "Connections opened." },
  { "connect_failures", "Connect attempts that failed." },
  { "pre_ping_failures", "Checkouts whose pre-ping found the connection dead." },
  { "invalidations", "Connections discarded as broken, invalidated or born before a disconnect." },
  { "recycles", "Connections replaced for pool_recycle or max_queries." },
  { "leaks", "Connections never closed, returned by the garbage collector." },
  { "queries", "Statements sent." },
  { "query_errors", "Statements that failed." },
  { "circuit_open", "Checkouts refused at once by the open circuit breaker." },
  { "read_fallbacks", "Reads served by the primary because no replica was healthy." },
  { "query_timeouts", "Statements cancelled at query_timeout (their connections discarded)." },
  { "ping_timeouts", "Pre-pings and health pings with no answer within ping_timeout." },
  { "reset_timeouts", "Resets on return with no answer within reset_timeout (connections discarded)." },
  { "session_resets", "DISCARD ALL sent on return for reset_session." },
  { "oversized_closes", "Connections closed on return after a message over max_message_size." },
  { "resizes", "pool_size = \"auto\": sizing steps that changed the pool's size." },
  { "overflow_connects", "Connections opened beyond pool_size (closed again on return while pool_size are idle)." },
  { "resize_closes", "pool_size = \"auto\": idle connections closed by sizing steps (spare all window, above the size)." },
}

local gauges = {
  { "idle_connections", "Connections idle in the pool.", "idle" },
  { "in_use_connections", "Connections checked out (or being opened).", "in_use" },
  { "connections", "Connections open or being opened.", "total" },
  { "overflow", "Connections beyond pool_size (negative below it).", "overflow" },
  { "waiters", "Checkouts queued for a connection.", "waiters" },
  { "peak_in_use_connections", "Most connections checked out at once.", "peak_in_use" },
  { "pool_size", "pool_size now: as configured, or under pool_size = \"auto\" the current size.", "size" },
  { "max_overflow", "Configured max_overflow (-1: unbounded).", "max_overflow" },
}

local histograms = {
  { "wait", "Seconds from a checkout call to a connection in hand." },
  { "hold", "Seconds a connection was checked out." },
  { "connect", "Seconds a successful connect took." },
}

-- The length of the UTF-8 sequence at byte i of s, or nil when none starts
-- there (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF).
local function utf8_length(s, i)
  local c = s:byte(i)
  local n, lo, hi = 0, 0x80, 0xBF
  if c < 0x80 then return 1
  elseif c >= 0xC2 and c <= 0xDF then n = 1
  elseif c >= 0xE0 and c <= 0xEF then
    n = 2
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
  elseif c >= 0xF0 and c <= 0xF4 then
    n = 3
    if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
  else return nil end
  for k = 1, n do
    local b = s:byte(i + k)
    if not b or b < (k == 1 and lo or 0x80) or b > (k == 1 and hi or 0xBF) then return nil end
  end
  return n + 1
end

-- Any byte that starts no valid UTF-8 sequence as the four characters \xHH
-- (the backslash escaped, so a scraper reads them as text).
local function valid_utf8(s)
  if not s:find("[\128-\255]") then return s end
  local out, i = {}, 1
  while i <= #s do
    local n = utf8_length(s, i)
    out[#out + 1] = n and s:sub(i, i + n - 1) or ("\\\\x%02x"):format(s:byte(i))
    i = i + (n or 1)
  end
  return table.concat(out)
end

-- label(value) -> the label value as the text format wants it, without
-- its quotes: backslash, double quote and line feed escaped, and valid
-- UTF-8 whatever the bytes (engine names are checked at creation, so this
-- is a second line of defence).
local function label(value)
  local escaped = value:gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" })
  return valid_utf8(escaped)
end

local function number(v)
  if v == math.huge then return "+Inf" end
  if math.type and math.type(v) == "integer" then return tostring(v) end
  if v == math.floor(v) and math.abs(v) < 2^53 then return ("%d"):format(v) end
  return ("%.17g"):format(v)
end

-- Each pool's series: one, labelled engine; or, with rows_of (under nginx,
-- lua/dbpool/ngx.lua), one per worker of the instance, labelled worker too.
local function snapshots(pools, rows_of)
  local snaps = {}
  for _, pool in ipairs(pools) do
    local engine = ('engine="%s"'):format(label(pool:name()))
    local rows = rows_of and rows_of(pool)
    if rows then
      for _, row in ipairs(rows) do
        snaps[#snaps + 1] = { name = ('%s,worker="%d"'):format(engine, row.worker), stats = row }
      end
    else
      snaps[#snaps + 1] = { name = engine, stats = pool:stats() }
    end
  end
  return snaps
end

-- pool_size = "auto": what the last sizing step saw, for engines that have
-- it (stats().autosize).  Under nginx each worker's series give its part of
-- the instance's decision (its share of the target and of busy and rate,
-- its own p99 burst), so that sum() over workers is the instance's; hold is
-- the decision's own; the current size is dbpool_pool_size.
local autosize_gauges = {
  { "autosize_target_connections", "The size the last sizing step set (under nginx: this worker's share of the instance's target).", "target" },
  { "autosize_hold_seconds", "Mean hold time of the last sizing window.", "hold" },
  { "autosize_busy_connections", "Connections busy on average in the last sizing window (rate x hold).", "busy" },
  { "autosize_p99_in_use_connections", "Connections in use at the p99 of the last sizing window's checkouts.", "p99" },
  { "autosize_checkout_rate", "Checkouts per second in the last sizing window.", "rate" },
  { "autosize_max_connections", "auto.max: the most connections the size may reach.", "max" },
  { "autosize_limit_connections", "dbpool.budget's allowance applied with apply = true, which the size stays under (0: none).", "limit" },
}
local function render_autosize(snaps, add)
  for _, g in ipairs(autosize_gauges) do
    local metric, head = "dbpool_" .. g[1], false
    for _, s in ipairs(snaps) do
      local a = s.stats.autosize
      if a and a[g[3]] then
        if not head then
          add(("# HELP %s %s\n# TYPE %s gauge\n"):format(metric, g[2], metric))
          head = true
        end
        add(('%s{%s} %s\n'):format(metric, s.name, number(a[g[3]])))
      end
    end
  end
end

local function render(pools, rows_of)
  local out = {}
  local function add(s) out[#out + 1] = s end
  local snaps = snapshots(pools, rows_of)
  for _, c in ipairs(counters) do
    local metric = "dbpool_" .. c[1] .. "_total"
    add(("# HELP %s %s\n# TYPE %s counter\n"):format(metric, c[2], metric))
    for _, s in ipairs(snaps) do
      add(('%s{%s} %s\n'):format(metric, s.name, number(s.stats[c[1]])))
    end
  end
  for _, g in ipairs(gauges) do
    local metric = "dbpool_" .. g[1]
    add(("# HELP %s %s\n# TYPE %s gauge\n"):format(metric, g[2], metric))
    for _, s in ipairs(snaps) do
      add(('%s{%s} %s\n'):format(metric, s.name, number(s.stats[g[3]])))
    end
  end
  render_autosize(snaps, add)
  add("# HELP dbpool_breaker_open 1 while the circuit breaker is open or half-open.\n"
    .. "# TYPE dbpool_breaker_open gauge\n")
  for _, s in ipairs(snaps) do
    add(('dbpool_breaker_open{%s} %d\n'):format(s.name, s.stats.breaker == "closed" and 0 or 1))
  end
  local bounds = core.hist_bounds()
  for _, h in ipairs(histograms) do
    local metric = "dbpool_" .. h[1] .. "_seconds"
    add(("# HELP %s %s\n# TYPE %s histogram\n"):format(metric, h[2], metric))
    for _, s in ipairs(snaps) do
      local hist, seen = s.stats[h[1]], 0
      for b, n in ipairs(hist.buckets) do
        seen = seen + n
        add(('%s_bucket{%s,le="%s"} %s\n'):format(metric, s.name,
          bounds[b] and ("%.12g"):format(bounds[b]) or "+Inf", number(seen)))
      end
      add(('%s_sum{%s} %.9f\n'):format(metric, s.name, hist.sum))
      add(('%s_count{%s} %s\n'):format(metric, s.name, number(hist.count)))
    end
  end
  return table.concat(out)
end

-- metrics.render([rows_of]) -> the text; rows_of(pool) -> per-worker rows
-- or nil.  metrics.label(value) -> a label value, escaped.
return {
  render = function(rows_of) return render(core.pools(), rows_of) end,
  label = label,
}
