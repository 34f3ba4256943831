-- spec/nginx/example_spec.lua: examples/openresty served by a real nginx.
-- Runs only under scripts/with-nginx.sh examples/openresty/nginx.conf (inside
-- scripts/with-pg.sh); defines no test otherwise:
--   scripts/with-pg.sh scripts/with-nginx.sh examples/openresty/nginx.conf \
--     luajit /usr/bin/busted -o TAP spec/nginx
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("examples/openresty/nginx.conf") then return end

local cjson = require "cjson"

local function get_json(path, status)
  local r = client.get(path)
  assert.are.equal(status or 200, r.status, path .. " answered: " .. r.body)
  assert.matches("^application/json", r.content_type)
  assert.is_table(r.json, path .. " is not JSON: " .. r.body)
  return r.json, r
end

local counters = { "checkouts", "waits", "timeouts", "connects", "connect_failures",
                   "pre_ping_failures", "invalidations", "recycles", "leaks",
                   "queries", "query_errors", "circuit_open" }
local gauges = { "idle", "in_use", "total", "overflow", "waiters", "peak_in_use",
                 "size", "max_overflow" }

local function assert_stats(s, name)
  for _, k in ipairs(counters) do
    assert.is_number(s[k], name .. "." .. k)
    assert.is_true(s[k] >= 0, name .. "." .. k)
  end
  for _, k in ipairs(gauges) do assert.is_number(s[k], name .. "." .. k) end
  assert.is_string(s.breaker)
  for _, h in ipairs { "wait", "hold", "connect" } do
    assert.is_table(s[h], name .. "." .. h)
    for _, q in ipairs { "count", "sum", "mean", "p50", "p95", "p99" } do
      assert.is_number(s[h][q], name .. "." .. h .. "." .. q)
    end
    assert.is_nil(s[h].buckets, "histograms are summarized, without buckets")
  end
end

describe("examples/openresty under nginx", function()
  it("serves each market from its own database", function()
    for market, db in pairs { KG = "shop_kg", US = "shop_us" } do
      local j = get_json("/api/v1/markets/" .. market .. "/now")
      assert.are.equal(market, j.market)
      assert.are.equal(db, j.database)
      assert.is_string(j.now)
      assert.matches("^%d%d%d%d%-%d%d%-%d%d ", j.now)
      assert.is_number(j.backend_pid)
      assert.is_number(j.worker.pid)
    end
  end)

  it("answers ping in plain text, and 404 for an unknown market", function()
    local r = client.get("/api/v1/markets/KG/ping")
    assert.are.equal(200, r.status, r.body)
    assert.are.equal("ok 1\n", r.body)
    r = client.get("/api/v1/markets/XX/ping")
    assert.are.equal(404, r.status)
    assert.are.equal("unknown market XX\n", r.body)
  end)

  it("answers 404 with JSON for an unknown market", function()
    local j = get_json("/api/v1/markets/XX/now", 404)
    assert.matches("unknown market XX", j.error)
    assert.are.same({ "KG", "US" }, j.markets)
  end)

  it("keeps serving under a burst spread over the workers", function()
    local inflight = {}
    for i = 1, 24 do
      inflight[i] = client.start("/api/v1/markets/" .. (i % 2 == 0 and "KG" or "US") .. "/now")
    end
    for _, req in ipairs(inflight) do
      local r = req:wait()
      assert.are.equal(200, r.status, r.body)
    end
  end)

  it("/api/v1/monitoring/pool-stats has every engine's counters, gauges and summarized histograms", function()
    client.get("/api/v1/markets/KG/now")
    local j = get_json("/api/v1/monitoring/pool-stats")
    assert.is_number(j.worker.pid)
    assert.is_table(j.engines.KG)
    assert.is_table(j.engines.US)
    assert_stats(j.engines.KG, "KG")
    assert_stats(j.engines.US, "US")
    assert.are.equal(0, j.engines.KG.in_use)      -- nothing checked out between requests
  end)

  it("/api/v1/monitoring/pool-metrics/detailed adds advice, and never the password", function()
    local j, r = get_json("/api/v1/monitoring/pool-metrics/detailed")
    for _, name in ipairs { "KG", "US" } do
      local e = j.engines[name]
      assert.is_table(e, name)
      assert_stats(e.stats, name)
      assert.is_number(e.advise.pool_size)
      assert.is_number(e.advise.max_overflow)
      assert.is_string(e.advise.reason)
      assert.matches("^dbpool%.Engine%(" .. name, e.engine)
      assert.matches("Pool size:", e.pool)
    end
    assert.is_nil(r.body:find(assert(os.getenv("DBPOOL_APP_PASSWORD")), 1, true), "password in the body")
  end)

  it("/api/v1/monitoring/health/database is 200 with each engine's status", function()
    local j, r = get_json("/api/v1/monitoring/health/database")
    assert.is_truthy(({ healthy = true, degraded = true })[j.status], j.status)
    for _, name in ipairs { "KG", "US" } do
      local h = j.engines[name]
      assert.is_table(h, name)
      assert.is_truthy(({ healthy = true, degraded = true })[h.status], name .. " " .. tostring(h.status))
      assert.is_table(h.reasons)
      assert.is_table(h.checked)
      assert.are.equal("closed", h.checked.breaker)
    end
    -- An empty list of reasons is a JSON array, not an object.
    if #j.engines.KG.reasons == 0 then
      assert.matches('"reasons":%[%]', r.body)
    end
    assert.are.equal(cjson.decode(r.body).status, j.status)
  end)

  it("/metrics is Prometheus text that promtool accepts", function()
    client.get("/api/v1/markets/US/now")
    local r = client.get("/metrics")
    assert.are.equal(200, r.status)
    assert.are.equal("text/plain; version=0.0.4", r.content_type)
    -- One series per worker of the instance, whichever worker answered.
    for _, w in ipairs { "0", "1" } do
      assert.matches('dbpool_checkouts_total{engine="KG",worker="' .. w .. '"} %d+', r.body)
      assert.matches('dbpool_checkouts_total{engine="US",worker="' .. w .. '"} %d+', r.body)
      assert.matches('dbpool_wait_seconds_bucket{engine="KG",worker="' .. w .. '",le="%+Inf"} %d+', r.body)
    end
    local ok, out = client.pipe_to("promtool check metrics", r.body)
    assert.is_true(ok, "promtool check metrics: " .. out)
  end)

  it("leaves no [error], [crit], [alert] or [emerg] line in nginx's error log", function()
    local lines = client.error_lines()
    assert.are.same({}, lines, table.concat(lines, "\n"))
  end)
end)
