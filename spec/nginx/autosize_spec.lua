-- spec/nginx/autosize_spec.lua: pool_size = "auto" in an nginx instance of
-- 2 workers (issue 22): each worker sizes its copy of engine AUTO (auto =
-- {min = 1, max = 4, interval = 0.2}) from a timer, with the instance's
-- numbers; engine:stats() sums the workers' sizes.  Runs only under
-- scripts/with-nginx.sh spec/nginx/instance.conf; defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/instance.conf") then return end

local function stats()
  local r = client.get("/inst/stats?engine=AUTO")
  assert.are.equal(200, r.status, r.body)
  return r.json.result
end

-- Waits until cond(stats()) holds; the last stats, and whether it held.
local function eventually(cond, secs)
  local deadline = os.time() + secs
  local s = stats()
  while not cond(s) and os.time() <= deadline do
    client.sleep(0.1)
    s = stats()
  end
  return s, cond(s)
end

describe("pool_size = \"auto\" in an nginx instance of 2 workers", function()
  it("starts each worker at auto.min (the instance's size is 2), opening nothing before a request", function()
    -- A worker's timers start with its first checkout (or dbpool.init_worker(),
    -- which this conf does not call), as min_idle's do.
    local s, held = eventually(function(x) return x.size == 2 end, 20)
    assert.is_true(held, "size " .. s.size)
    assert.are.equal(0, s.total)
  end)

  it("grows under concurrent requests, within auto.max per worker, and shrinks back after", function()
    local peak, s = 0, nil
    local deadline = os.time() + 30
    while peak < 5 and os.time() <= deadline do
      local requests = {}
      for i = 1, 16 do requests[i] = client.start("/auto/query?ms=150") end
      for _, req in ipairs(requests) do
        local r = req:wait()
        assert.are.equal(200, r.status, r.body)
      end
      s = stats()
      peak = math.max(peak, s.size)
    end
    assert.is_true(peak >= 5, "the instance's size grew to " .. peak)
    assert.is_true(peak <= 8, "at most auto.max (4) per worker")
    -- Workers publish their numbers every second: wait for the last ones.
    local counted
    s, counted = eventually(function(x) return x.resizes >= 2 end, 20)
    assert.is_true(counted, "resizes counted in the instance's numbers: " .. s.resizes)
    local after, held = eventually(function(x) return x.size == 2 and x.total <= 2 end, 40)
    assert.is_true(held, "back to auto.min per worker: size " .. after.size .. ", total " .. after.total)
  end)
end)
