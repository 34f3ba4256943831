-- spec/nginx/worker_engines_spec.lua: engines declared in nginx's workers (issue 22,
-- point 6), not in the master: WINST and WAUTO in init_worker_by_lua, LAZY
-- by a worker's first request for it.  The master loaded dbpool, so it
-- mapped the instance arena before fork, and every worker that declares
-- the same engine takes the same table from it: stats and metrics count
-- every worker, pool_size = "auto" takes one decision per instance.
-- Runs only under scripts/with-nginx.sh spec/nginx/instance.conf (2
-- workers); defines no test otherwise.  busted runs the files in name
-- order, so this one runs after instance_spec.lua's `nginx -s reload` and
-- worker kills: the workers are the second generation, on the arena the
-- master mapped again (and autosize_spec.lua's first test still sees
-- workers that made no checkout).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/instance.conf") then return end

local PUBLISHED = 1.3       -- seconds: every worker has published by then (every 1 s)

local function get(path)
  local r = client.get(path)
  assert.are.equal(200, r.status, path .. ": " .. r.body)
  return r.json
end

-- n concurrent requests to path; the workers (by id) that served them.
local function load(path, n)
  local requests, workers = {}, {}
  for i = 1, n do requests[i] = client.start(path) end
  for _, req in ipairs(requests) do
    local r = req:wait()
    assert.are.equal(200, r.status, r.body)
    workers[r.json.result.worker] = true
  end
  return workers
end

local function count(set)
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  return n
end

-- engine's checkouts as engine:stats() and dbpool.metrics() say them, in
-- whichever worker answers; and the metrics by worker.
local function checkouts(engine)
  local rows = get("/w/rows?engine=" .. engine).result
  local stats_total = 0
  for _, r in ipairs(rows) do stats_total = stats_total + r.checkouts end
  local r = client.get("/metrics")
  assert.are.equal(200, r.status, r.body)
  local total, by_worker = 0, {}
  for worker, v in r.body:gmatch('dbpool_checkouts_total{engine="' .. engine .. '",worker="(%d+)"} (%d+)') do
    total = total + tonumber(v)
    by_worker[worker] = (by_worker[worker] or 0) + tonumber(v)
  end
  local stats = get("/inst/stats?engine=" .. engine).result
  return { rows = stats_total, metrics = total, stats = stats.checkouts,
           processes = stats.processes, by_worker = by_worker, body = r.body }
end

describe("an engine declared in each worker of a 2-worker nginx", function()
  it("is counted for the instance: engine:stats() and dbpool.metrics() in any worker see both", function()
    local before = checkouts("WINST")
    local served, made = nil, 0
    for _ = 1, 5 do                        -- until both workers served some
      served = load("/w/query?engine=WINST&ms=50", 20)
      made = made + 20
      if count(served) == 2 then break end
    end
    assert.are.equal(2, count(served), "both workers served")
    client.sleep(PUBLISHED)
    for _ = 1, 8 do                        -- each answer from either worker
      local now = checkouts("WINST")
      assert.are.equal(before.stats + made, now.stats, "every request counted once")
      assert.are.equal(now.stats, now.metrics, now.body)
      assert.are.equal(now.stats, now.rows)
      assert.are.equal(2, now.processes, "both workers in engine:stats()")
      assert.is_number(now.by_worker["0"], now.body)
      assert.is_number(now.by_worker["1"], now.body)
    end
  end)

  it("is counted for the instance when a request declared it (engine LAZY)", function()
    local served, made = nil, 0
    for _ = 1, 5 do
      served = load("/w/query?engine=LAZY&ms=50", 20)
      made = made + 20
      if count(served) == 2 then break end
    end
    assert.are.equal(2, count(served), "both workers served, and declared LAZY")
    client.sleep(PUBLISHED)
    local s = checkouts("LAZY")
    assert.are.equal(made, s.stats, "every request counted once, the first ones too")
    assert.are.equal(2, s.processes, "both workers in engine:stats()")
    assert.are.equal(s.stats, s.metrics, s.body)
  end)

  it("never goes backwards when a worker removes the engine and declares it again", function()
    load("/w/query?engine=WINST", 10)
    client.sleep(PUBLISHED)
    local before = checkouts("WINST").stats
    local redeclared = get("/w/redeclare").result.worker
    local counted_in, made = {}, 0
    for _ = 1, 5 do                        -- the redeclaring worker serves some
      for w in pairs(load("/w/query?engine=WINST", 10)) do counted_in[w] = true end
      made = made + 10
      if counted_in[redeclared] then break end
    end
    assert.is_true(counted_in[redeclared], "the worker that declared it again served requests")
    client.sleep(PUBLISHED)
    local after = checkouts("WINST")
    assert.are.equal(before + made, after.stats,
      ("from %d: every request counted, nothing lost or taken back"):format(before))
    assert.are.equal(2, after.processes, "one live process per worker")
    assert.are.equal(after.stats, after.metrics, after.body)
  end)
end)

describe("pool_size = \"auto\" for an engine declared in each worker (WAUTO)", function()
  -- One sample of the live workers' rows: whether both are at their share
  -- of one instance decision; the instance's target.
  local function sample()
    local rows = get("/w/rows?engine=WAUTO").result
    local live = {}
    for _, r in ipairs(rows) do
      if r.processes > 0 then live[#live + 1] = r end
    end
    local shared, target, sum = #live == 2, nil, 0
    for _, r in ipairs(live) do
      target = target or r.instance_target
      shared = shared and r.decision > 0 and r.instance_target == target and
        r.decided_by == live[1].decided_by and r.share >= 1 and r.target == r.share
      sum = sum + (r.share or 0)
    end
    return shared and sum == target, target or 0, live
  end

  -- The running workers' pids: this generation's (instance_spec.lua's
  -- reload left the previous one's lines in the log, counted in the
  -- previous arena).
  local function worker_pids()
    local pids = {}
    local p = assert(io.popen("pgrep -P " .. assert(os.getenv("DBPOOL_NGINX_PID"))))
    for line in p:lines() do pids[line] = true end
    p:close()
    return pids
  end

  -- WAUTO's resize lines (dbpool.log, repeated at notice by test_app.lua)
  -- logged by this generation's workers.
  local function resize_lines()
    local lines, pids = {}, worker_pids()
    for _, line in ipairs(client.error_lines { "notice" }) do
      local pid, said = line:match("%[notice%] (%d+)#.*worker%-engine%-resize: (.*)$")
      if said and pids[pid] then lines[#lines + 1] = pid .. " " .. said end
    end
    return lines
  end

  it("takes one decision per instance, each worker sized to its share, counted and logged once", function()
    local split_seen, peak, samples = false, 0, 0
    local deadline = os.time() + 40
    while not (split_seen and peak >= 3) and os.time() <= deadline do
      local requests = {}
      for i = 1, 16 do requests[i] = client.start("/w/query?engine=WAUTO&ms=300") end
      for _ = 1, 4 do
        client.sleep(0.05)
        local ok, target = sample()
        samples = samples + 1
        peak = math.max(peak, target)
        if ok and target >= 3 then split_seen = true end
      end
      for _, req in ipairs(requests) do assert.are.equal(200, req:wait().status) end
    end
    assert.is_true(peak >= 3 and peak <= 8, "the instance's target grew to " .. peak)
    assert.is_true(split_seen, "both workers at their share of one grown target, in "
      .. samples .. " samples")
    -- Each decision that changed the size: counted once for the instance,
    -- logged once, "for the instance of 2 workers".
    local lines, resizes
    local settled_by = os.time() + 20
    repeat
      client.sleep(0.3)
      resizes = 0
      for _, r in ipairs(get("/w/rows?engine=WAUTO").result) do resizes = resizes + r.resizes end
      lines = resize_lines()
    until #lines == resizes or os.time() > settled_by
    assert.are.equal(resizes, #lines, "one resize counted per logged decision:\n"
      .. table.concat(lines, "\n"))
    assert.is_true(#lines >= 1, "the load grew the instance")
    local numbers = {}
    for _, line in ipairs(lines) do
      local decision = line:match("for the instance of 2 workers %(decision (%d+): ")
      assert.is_truthy(decision, line)
      assert.is_nil(numbers[decision], "decision " .. tostring(decision) .. " logged twice")
      numbers[decision] = true
    end
  end)

  it("says nothing about a missing instance table: the master mapped the arena", function()
    local said = {}
    for _, line in ipairs(client.error_lines { "warn" }) do
      if line:find("has no instance table", 1, true) then said[#said + 1] = line end
    end
    assert.are.same({}, said, table.concat(said, "\n"))
  end)
end)
