-- spec/nginx/instance_spec.lua: one nginx instance of 2 workers through its
-- lifecycle (issue 18): one metrics view across the workers, also when one
-- is replaced; `nginx -s reload` with changed options.
-- Runs only under scripts/with-nginx.sh spec/nginx/instance.conf; defines
-- no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/instance.conf") then return end

local function get(path)
  local r = client.get(path)
  assert.are.equal(200, r.status, path .. ": " .. r.body)
  return r.json
end

local function alive(pid)
  local f = io.open("/proc/" .. pid .. "/cmdline")
  if not f then return false end
  local cmd = f:read("*a") or ""
  f:close()
  return cmd:find("nginx: worker", 1, true) ~= nil
end

-- Sums dbpool_<metric> over the series of engine INST: total, and by worker.
local function scrape(metric)
  local r = client.get("/metrics")
  assert.are.equal(200, r.status, r.body)
  local total, by_worker = 0, {}
  for worker, v in r.body:gmatch(metric .. '{engine="INST",worker="(%d+)"} (%d+)') do
    total = total + tonumber(v)
    by_worker[worker] = (by_worker[worker] or 0) + tonumber(v)
  end
  return total, by_worker, r.body
end

local worker_pids = client.worker_pids

describe("one view of an nginx instance of 2 workers", function()
  local PUBLISHED = 1.3       -- seconds: every worker has published by then (every 1 s)

  it("reports every worker's numbers, labelled worker, in any worker's scrape and stats", function()
    local before = scrape("dbpool_checkouts_total")
    local requests, pids = {}, {}
    for i = 1, 20 do requests[i] = client.start("/inst/query?ms=50") end
    for _, req in ipairs(requests) do
      local r = req:wait()
      assert.are.equal(200, r.status, r.body)
      pids[r.json.pid] = true
    end
    local n = 0
    for _ in pairs(pids) do n = n + 1 end
    assert.are.equal(2, n, "both workers served")
    client.sleep(PUBLISHED)
    for _ = 1, 8 do
      local total, by_worker, body = scrape("dbpool_checkouts_total")
      assert.are.equal(before + 20, total, body)
      assert.is_number(by_worker["0"], body)
      assert.is_number(by_worker["1"], body)
      local stats = get("/inst/stats").result
      assert.are.equal(before + 20, stats.checkouts)
      assert.are.equal(2, stats.processes)
    end
  end)

  it("never lets a counter go backwards when a worker is replaced", function()
    for _ = 1, 10 do get("/inst/query") end
    client.sleep(PUBLISHED)
    local total, by_worker = scrape("dbpool_checkouts_total")
    local victim = worker_pids()[1]
    assert(os.execute("kill -KILL " .. victim))
    local deadline = os.time() + 10
    repeat client.sleep(0.2) until (#worker_pids() == 2 and worker_pids()[1] ~= victim and
      worker_pids()[2] ~= victim) or os.time() > deadline
    for _ = 1, 10 do get("/inst/query") end
    client.sleep(PUBLISHED)
    local total2, by_worker2, body = scrape("dbpool_checkouts_total")
    assert.are.equal(total + 10, total2, body)
    for w, v in pairs(by_worker) do
      assert.is_true(by_worker2[w] >= v, ("worker %s went from %d to %d"):format(w, v, by_worker2[w]))
    end
  end)
end)

describe("nginx -s reload with changed options", function()
  it("runs the new workers with the new options, lets the old ones finish and exit, and logs no error", function()
    local old = {}
    for _ = 1, 8 do
      local j = get("/inst/query")
      assert.are.equal(2, j.result.pool_size)
      old[j.pid] = true
    end
    -- Every running worker is old, also one that the 8 requests missed (a
    -- worker restarted by an earlier spec may get none of them).
    for _, pid in ipairs(worker_pids()) do old[pid] = true end
    local in_flight = client.start("/inst/query?ms=1500")
    client.sleep(0.3)
    local f = assert(io.open(os.getenv("DBPOOL_NGINX_PREFIX") .. "/conf/instance_pool_size", "w"))
    f:write("3\n")
    f:close()
    assert(os.execute("kill -HUP " .. assert(os.getenv("DBPOOL_NGINX_PID"))))
    -- New workers answer with the new pool_size; no old worker takes new
    -- requests once they run.
    local new, deadline = {}, os.time() + 10
    repeat
      client.sleep(0.1)
      local j = get("/inst/query")
      if not old[j.pid] then
        assert.are.equal(3, j.result.pool_size, "a new worker runs with the new options")
        new[j.pid] = true
      end
    until next(new) or os.time() > deadline
    assert.truthy(next(new), "no new worker after the reload")
    -- The request in flight finished on its old worker, with the old options.
    local r = in_flight:wait()
    assert.are.equal(200, r.status, r.body)
    assert.is_true(old[r.json.pid], "served by an old worker")
    assert.are.equal(2, r.json.result.pool_size)
    -- The old workers exit.
    deadline = os.time() + 10
    local left
    repeat
      client.sleep(0.2)
      left = {}
      for pid in pairs(old) do if alive(pid) then left[#left + 1] = pid end end
    until #left == 0 or os.time() > deadline
    assert.are.same({}, left, "old workers still running")
    local errors = {}
    for _, line in ipairs(client.error_lines()) do     -- the worker killed above, alone
      if not line:find("exited on signal 9", 1, true) then errors[#errors + 1] = line end
    end
    assert.are.same({}, errors, table.concat(errors, "\n"))
  end)

  it("logs no ngx.sleep(0) warning in any worker, old or new (Debian's nginx has no delayed events patch)", function()
    local warnings = {}
    for _, line in ipairs(client.error_lines { "warn" }) do
      if line:find("delayed events patch", 1, true) then warnings[#warnings + 1] = line end
    end
    assert.are.same({}, warnings, table.concat(warnings, "\n"))
  end)
end)
