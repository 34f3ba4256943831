-- spec/nginx/cap_spec.lua: max_total_connections across the workers of one
-- nginx.  Engine CAP (pool_size 4 in each of 2 workers) is declared in the
-- master with max_total_connections = 3; under concurrent load the server
-- must never see more than 3 of its connections.  Runs only under
-- scripts/with-nginx.sh spec/nginx/cap.conf; defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/cap.conf") then return end

local helper = require "helper"

local function server_count()
  local rows = assert(helper.admin():query(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'dbpool-nginx-cap'"))
  return rows[1].n
end

describe("max_total_connections across 2 nginx workers", function()
  it("keeps the server at or under the cap while every request is served", function()
    local requests = {}
    for i = 1, 16 do requests[i] = client.start("/cap/slow?ms=300", 30) end
    -- 16 requests of 300 ms through 3 connections take about 1.6 s: sample
    -- the server's count all along.
    local most, sys = 0, require "system"
    local stop = sys.monotime() + 2.5
    while sys.monotime() < stop do
      most = math.max(most, server_count())
      sys.sleep(0.02)
    end
    for _, r in ipairs(requests) do
      local res = r:wait()
      assert.are.equal(200, res.status, res.body)
    end
    assert.is_true(most <= 3, "the server saw " .. most .. " connections of engine CAP")
    assert.is_true(most >= 2, "load too light to show the cap: at most " .. most)
    assert.is_true(server_count() <= 3)
  end)
end)
