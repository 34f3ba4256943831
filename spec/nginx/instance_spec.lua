-- spec/nginx/instance_spec.lua: one nginx instance of 2 workers through its
-- lifecycle (issue 18): `nginx -s reload` with changed options.
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

describe("nginx -s reload with changed options", function()
  it("runs the new workers with the new options, lets the old ones finish and exit, and logs no error", function()
    local old = {}
    for _ = 1, 8 do
      local j = get("/inst/query")
      assert.are.equal(2, j.result.pool_size)
      old[j.pid] = true
    end
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
    local errors = client.error_lines()
    assert.are.same({}, errors, table.concat(errors, "\n"))
  end)
end)
