-- spec/nginx/phases_spec.lua: dbpool in nginx's phases and lifecycle
-- (issue 18; DESIGN.md "Inside nginx (OpenResty)", "Lives with its host's
-- lifecycle").  In a phase where nginx cannot yield, a call that would wait
-- for PostgreSQL raises at once, naming the phase and ngx.timer.at, and the
-- worker serves its other requests meanwhile; init_by_lua (the master) may
-- query but keeps no connection; min_idle is kept by a timer; every module
-- is loaded at init_by_lua; Debian's nginx logs no ngx.sleep(0) warning.
-- Runs only under scripts/with-nginx.sh spec/nginx/nginx.conf (one worker:
-- two requests are served by the same one); defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/nginx.conf") then return end

local helper = require "helper"

local LEAD = 0.1        -- seconds between the phase's request and the control

local function server_count(app)
  local rows = assert(helper.admin():query(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", app))
  return rows[1].n
end

-- The error log's lines that contain text.
local function log_lines(text)
  local found = {}
  local f = assert(io.open(client.error_log, "r"))
  for line in f:lines() do
    if line:find(text, 1, true) then found[#found + 1] = line end
  end
  f:close()
  return found
end

local function assert_refused(lines, phase)
  assert.is_true(#lines >= 1, "no phase-check line for " .. phase)
  for _, line in ipairs(lines) do
    assert.truthy(line:find(phase .. "_by_lua*", 1, true), line)
    assert.truthy(line:find("ngx.timer.at(0", 1, true), line)
    assert.falsy(line:find("no error", 1, true), line)
  end
end

describe("dbpool in nginx's phases", function()
  setup(function()
    for _ = 1, 2 do assert.are.equal(200, client.get("/fast").status) end
  end)

  for _, phase in ipairs { "set", "header_filter", "body_filter", "log", "balancer" } do
    it("refuses at once to wait in " .. phase .. "_by_lua*, and the worker serves the next request meanwhile", function()
      local a = client.start("/phase/" .. phase)
      client.sleep(LEAD)
      local b = client.start("/fast")
      local ra, rb = a:wait(), b:wait()
      assert.are.equal(200, ra.status, ra.body)
      assert.are.equal(200, rb.status, rb.body)
      -- The statement would take 1 s: a worker that ran it blocking would
      -- hold both requests that long.
      assert.is_true(ra.seconds < 0.5, ("%s took %.3f s"):format(ra.path, ra.seconds))
      assert.is_true(rb.seconds < 0.5, ("/fast took %.3f s"):format(rb.seconds))
      client.sleep(0.1)                        -- the log phase runs after the answer
      assert_refused(log_lines("phase-check " .. phase .. ":"), phase)
    end)
  end

  it("refuses in the log phase a statement on a connection checked out in the content phase", function()
    assert.are.equal(200, client.get("/phase/log").status)
    client.sleep(0.1)
    assert_refused(log_lines("phase-check-conn log:"), "log")
  end)

  it("refuses to wait in init_worker_by_lua*", function()
    assert_refused(log_lines("phase-check init_worker:"), "init_worker")
  end)

  it("lets init_by_lua query, and the master keeps no connection", function()
    -- test_app.init queried engine MASTER in the master; nothing else uses it.
    assert.are.equal(0, server_count("dbpool-nginx-master"))
  end)

  it("opens min_idle in the worker from a timer, none in the master", function()
    -- Engine WARM (min_idle 2) was made in the master; the worker's first
    -- checkout started its timer.
    local n, deadline = 0, os.time() + 5
    repeat
      client.sleep(0.1)
      n = server_count("dbpool-nginx-warm")
    until n >= 2 or os.time() > deadline
    assert.are.equal(2, n)
  end)

  it("loads every module it uses at init_by_lua, none on a request", function()
    local r = client.get("/modules")
    assert.are.equal(200, r.status, r.body)
    local v = r.json.result
    assert.are.same(v.at_init, v.now)
    for _, m in ipairs { "dbpool", "dbpool.advise", "dbpool.health", "dbpool.metrics", "dbpool.ngx" } do
      assert.truthy(table.concat(v.at_init, " "):find(m, 1, true), m .. " not loaded at init")
    end
  end)

  it("logs no ngx.sleep(0) warning while it opens connections (Debian's nginx has no delayed events patch)", function()
    local requests = {}
    for i = 1, 4 do requests[i] = client.start("/slow?ms=200") end   -- T opens 4 connections
    for _, r in ipairs(requests) do assert.are.equal(200, r:wait().status) end
    local warnings = log_lines("called without delayed events patch")
    assert.are.same({}, warnings, table.concat(warnings, "\n"))
  end)
end)
