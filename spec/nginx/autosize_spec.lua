-- spec/nginx/autosize_spec.lua: pool_size = "auto" in an nginx instance of
-- 2 workers (issue 22): one sizing decision per instance for engine AUTO
-- (auto = {min = 1, max = 4, interval = 0.2}), taken by whichever worker
-- holds the lease, and each worker's copy of the pool sized to its share;
-- engine:stats() sums the workers' sizes.  Runs only under
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
    -- Each worker logs the connections its own steps closed (the decision's
    -- line is the taker's): as many as dbpool_resize_closes_total counts.
    local logged, closes
    local deadline2 = os.time() + 10
    repeat
      client.sleep(0.3)
      logged = 0
      for _, line in ipairs(client.error_lines { "notice" }) do
        local n = line:match("close%-line: .*: closed (%d+) idle, oldest first")
        if n then logged = logged + tonumber(n) end
      end
      closes = stats().resize_closes
    until (logged == closes and closes > 0) or os.time() > deadline2
    assert.is_true(closes > 0, "the shrink closed connections")
    assert.are.equal(closes, logged, "every close logged by the worker that made it")
  end)

  -- Per-worker rows (/auto/workers): the numbers dbpool.metrics() labels worker=.
  local function workers()
    local r = client.get("/auto/workers")
    assert.are.equal(200, r.status, r.body)
    return r.json.result
  end

  -- Capacity invariants of one sample of every live worker; whether each
  -- worker's target is its share of the instance's decision (the decision
  -- splits its target by the workers' bursts, and the shares add up to it).
  local function check(rows)
    local live = {}
    for _, r in ipairs(rows) do
      if r.processes > 0 then live[#live + 1] = r end
    end
    local shares, target, sum = true, nil, 0
    for _, r in ipairs(live) do
      local where = ("worker %d: %s"):format(r.worker, require("cjson").encode(r))
      assert.is_true(r.size >= 1 and r.size <= 4, "size within auto.min..auto.max; " .. where)
      assert.is_true(r.total <= 4 + 2, "at most auto.max + max_overflow open; " .. where)
      assert.are.equal(r.total - r.size, r.overflow, "overflow = total - size; " .. where)
      assert.are.equal(r.total, r.idle + r.in_use, "idle + in use = total; " .. where)
      if r.decision > 0 and r.target > 0 then
        assert.are.equal(r.target, r.size, "the size is the share applied; " .. where)
      end
      target = target or r.instance_target
      shares = shares and r.decision > 0 and r.instance_target == target and r.share >= 1 and
        r.target == r.share
      sum = sum + (r.share or 0)
    end
    return shares and #live == 2 and sum == target, target or 0, live
  end

  -- dbpool.log's resize lines, which test_app.lua repeats at notice.
  local function resize_lines()
    local lines = {}
    for _, line in ipairs(client.error_lines { "notice" }) do
      lines[#lines + 1] = line:match("resize%-line: (.*)$")
    end
    return lines
  end

  it("takes one decision per instance: each worker's size follows its share, capacity exact at every sample", function()
    local split_seen, peak_target, samples = false, 0, 0
    local deadline = os.time() + 40
    while not (split_seen and peak_target >= 3) and os.time() <= deadline do
      local requests = {}
      for i = 1, 16 do requests[i] = client.start("/auto/query?ms=300") end
      for _ = 1, 4 do                       -- samples taken under the load
        client.sleep(0.05)
        local ok, target = check(workers())
        samples = samples + 1
        peak_target = math.max(peak_target, target)
        if ok and target >= 3 then split_seen = true end
      end
      for _, req in ipairs(requests) do
        local r = req:wait()
        assert.are.equal(200, r.status, r.body)
      end
    end
    assert.is_true(peak_target >= 3, "the instance's target grew to " .. peak_target)
    assert.is_true(peak_target <= 8, "at most auto.max x 2 workers")
    assert.is_true(split_seen, "every worker at its share of a grown target, in " .. samples .. " samples")
    -- After the load: back to auto.min each, every sample still exact.
    local settled = false
    deadline = os.time() + 40
    while not settled and os.time() <= deadline do
      local ok, target, live = check(workers())
      settled = ok and target == 2 and live[1].total <= 1 and live[2].total <= 1
      if not settled then client.sleep(0.1) end
    end
    assert.is_true(settled, "each worker back to its share (1) of the instance's 2")
  end)

  it("logs each instance decision once, through dbpool.log with its inputs, and counts it once", function()
    local lines, counted, numbers
    local _, held = eventually(function()
      local resizes = 0
      for _, r in ipairs(workers()) do resizes = resizes + r.resizes end
      lines, counted = resize_lines(), resizes
      return #lines == counted
    end, 20)
    assert.is_true(held, ("%d resize lines, %d resizes counted"):format(#lines, counted))
    assert.is_true(#lines >= 2, "the load above grew and shrank the instance")
    numbers = {}
    for _, line in ipairs(lines) do
      local decision = line:match("for the instance of 2 workers %(decision (%d+): ")
      assert.is_truthy(decision, line)
      assert.is_nil(numbers[decision], "decision " .. tostring(decision) .. " logged twice")
      numbers[decision] = true
      assert.is_truthy(line:find("checkouts/s x [%d.]+ s mean hold = [%d.]+ busy; p99 in use %d+"), line)
      local a, b = line:match("shares by worker id 0:(%d+) 1:(%d+)")
      assert.is_truthy(a, line)
      local to = line:match("pool_size auto %d+ %-> (%d+) for the instance")
      assert.are.equal(tonumber(to), tonumber(a) + tonumber(b), "the shares add up: " .. line)
    end
  end)

  it("exposes the autosize gauges in dbpool.metrics(), one series per worker", function()
    local r = client.get("/metrics")
    assert.are.equal(200, r.status, r.body)
    for _, g in ipairs { "autosize_target_connections", "autosize_busy_connections",
                         "autosize_p99_in_use_connections", "autosize_checkout_rate",
                         "autosize_hold_seconds", "autosize_max_connections", "pool_size" } do
      for _, w in ipairs { "0", "1" } do
        local series = ('dbpool_%s{engine="AUTO",worker="%s"} '):format(g, w)
        assert.is_truthy(r.body:find(series, 1, true), "no " .. series)
      end
    end
    local t0 = r.body:match('dbpool_autosize_target_connections{engine="AUTO",worker="0"} (%d+)')
    local t1 = r.body:match('dbpool_autosize_target_connections{engine="AUTO",worker="1"} (%d+)')
    assert.are.equal(2, tonumber(t0) + tonumber(t1), "the workers' shares sum to the instance's target")
  end)

  it("applies dbpool.budget's limit, set in one worker, to every worker's share", function()
    local r = client.get("/auto/budget?max=6")      -- 6 / 2 instances - max_overflow 2 = 1
    assert.are.equal(200, r.status, r.body)
    assert.are.equal(1, r.json.result.limit)
    local deadline = os.time() + 20
    local limited = false
    while os.time() <= deadline and not limited do  -- every worker's step has read it
      local requests = {}
      for i = 1, 12 do requests[i] = client.start("/auto/query?ms=200") end
      for _ = 1, 3 do
        client.sleep(0.05)
        local ok, target = check(workers())
        if ok and target == 2 then limited = true end
      end
      for _, req in ipairs(requests) do assert.are.equal(200, req:wait().status) end
    end
    assert.is_true(limited, "under load the instance's target held at 2 x the limit 1")
    -- Under load and the limit, several more samples: never above 1 each.
    local requests = {}
    for i = 1, 12 do requests[i] = client.start("/auto/query?ms=300") end
    for _ = 1, 5 do
      client.sleep(0.05)
      local _, target, live = check(workers())
      assert.is_true(target <= 2, "the instance's target " .. target .. " under 2 x 1")
      for _, w in ipairs(live) do assert.is_true(w.size <= 1, "worker " .. w.worker .. " size " .. w.size) end
    end
    for _, req in ipairs(requests) do assert.are.equal(200, req:wait().status) end
    r = client.get("/auto/budget?max=100")           -- no longer binding
    assert.are.equal(4, r.json.result.limit)
  end)

  it("splits the instance's target by the workers' own load: a worker without traffic keeps its floor", function()
    -- Timers in one worker: nginx sends the other nothing.
    local started = client.get("/auto/load?n=6&ms=100&secs=5")
    assert.are.equal(200, started.status, started.body)
    local loaded, seen, last = started.json.result.worker, false, nil
    local deadline = os.time() + 15
    while not seen and os.time() <= deadline do
      client.sleep(0.1)
      local mine, other
      last = workers()
      for _, r in ipairs(last) do
        if r.processes > 0 and r.worker == loaded then mine = r
        elseif r.processes > 0 then other = r end
      end
      seen = mine ~= nil and other ~= nil and mine.decision > 0 and
        mine.instance_target == other.instance_target and
        mine.share + other.share == mine.instance_target and
        other.share == 1 and mine.share == 4 and mine.target == mine.share
    end
    -- 6 in use at once: its share is auto.max (4), and what it cannot hold
    -- goes to nobody, not to the idle worker.
    assert.is_true(seen, "worker " .. loaded .. " loaded (6 at once): its share 4 (auto.max), "
      .. "the other's 1 (auto.min), adding up to the target; last: " .. require("cjson").encode(last))
  end)

  it("keeps deciding when the deciding worker is killed: its lease passes on at once", function()
    local rows = workers()
    local holder, number = rows[1].decided_by, rows[1].decision
    assert.is_true(holder > 0 and number > 0, "a decision was taken")
    assert(os.execute("kill -KILL " .. holder))
    -- nginx starts a new worker under the same id; the decisions go on,
    -- taken by another process, and every worker follows its share.
    local ok, target, live
    local deadline = os.time() + 30
    repeat
      local requests = {}
      for i = 1, 12 do requests[i] = client.start("/auto/query?ms=200") end
      client.sleep(0.1)
      rows = workers()
      ok, target, live = check(rows)
      for _, req in ipairs(requests) do req:wait() end
    until (ok and live[1].decided_by ~= holder and live[1].decision > number and target >= 3)
      or os.time() > deadline
    assert.is_true(ok, "each live worker at its share after the kill")
    assert.are_not.equal(holder, live[1].decided_by, "decided by another process")
    assert.is_true(live[1].decision > number, "decisions went on")
    assert.is_true(target >= 3, "and followed the load: target " .. target)
  end)
end)
