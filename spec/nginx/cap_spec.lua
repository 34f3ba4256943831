-- spec/nginx/cap_spec.lua: max_total_connections across the workers of one
-- nginx.  Engine CAP (pool_size 4 in each of 2 workers) is declared in the
-- master with max_total_connections = 3, WCAP the same in each worker;
-- under concurrent load the server must never see more than 3 of either's
-- connections.  Runs only under
-- scripts/with-nginx.sh spec/nginx/cap.conf; defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/cap.conf") then return end

local helper = require "helper"

local function server_count(app)
  local rows = assert(helper.admin():query(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
    app or "dbpool-nginx-cap"))
  return rows[1].n
end

-- 16 requests of 300 ms on engine, sampling the server's count of its
-- connections (application_name app) all along: the most seen.
local function load_and_sample(engine, app)
  local requests = {}
  for i = 1, 16 do requests[i] = client.start("/cap/slow?ms=300&engine=" .. engine, 30) end
  local most, sys = 0, require "system"
  local stop = sys.monotime() + 2.5
  while sys.monotime() < stop do
    most = math.max(most, server_count(app))
    sys.sleep(0.02)
  end
  for _, r in ipairs(requests) do
    local res = r:wait()
    assert.are.equal(200, res.status, res.body)
  end
  return most
end

describe("max_total_connections across 2 nginx workers", function()
  it("holds for an engine declared in each worker (init_worker_by_lua): the instance arena's cap", function()
    local most = load_and_sample("WCAP", "dbpool-nginx-wcap")
    assert.is_true(most <= 3, "the server saw " .. most .. " connections of engine WCAP")
    assert.is_true(most >= 2, "load too light to show the cap: at most " .. most)
    assert.is_true(server_count("dbpool-nginx-wcap") <= 3)
  end)

  it("keeps the server at or under the cap while every request is served", function()
    -- 16 requests of 300 ms through 3 connections take about 1.6 s.
    local most = load_and_sample("CAP", "dbpool-nginx-cap")
    assert.is_true(most <= 3, "the server saw " .. most .. " connections of engine CAP")
    assert.is_true(most >= 2, "load too light to show the cap: at most " .. most)
    assert.is_true(server_count() <= 3)
  end)
end)
