-- spec/nginx/worker_exit_spec.lua: a worker stopped (SIGTERM) while its
-- requests hold connections.  Runs only under scripts/with-nginx.sh
-- spec/nginx/instance.conf, whose workers declare engines in
-- init_worker_by_lua (what made the exit crash); defines no test otherwise.
-- busted runs the files in name order: this one after
-- worker_engines_spec.lua, whose resize lines assume both workers of a
-- generation started together.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/instance.conf") then return end

local worker_pids = client.worker_pids

describe("a worker stopped with statements in flight", function()
  -- nginx closes the worker's Lua VM as the worker exits; the connections
  -- still checked out are returned by their finalizers, whose leak report
  -- must not call into Lua then (ngx.log read a request freed long before:
  -- signal 11).  It goes to stderr, which is nginx's error log.
  it("exits with code 0 and reports each connection it left checked out", function()
    local helper = require "helper"
    local sys = require "system"
    local function sleeping()
      return assert(helper.admin():query("SELECT count(*) AS n FROM pg_stat_activity " ..
        "WHERE application_name = 'dbpool-nginx-instance' AND query LIKE 'SELECT pg_sleep%' " ..
        "AND state = 'active'"))[1].n
    end
    -- 2 statements: INST has 2 connections (3 after instance_spec's reload)
    -- in each worker, so both run wherever nginx sends them.
    local requests = {}
    for i = 1, 2 do requests[i] = client.start("/inst/query?ms=5000", 20) end
    local deadline = sys.monotime() + 10
    while sleeping() < 2 and sys.monotime() < deadline do sys.sleep(0.05) end
    assert.are.equal(2, sleeping(), "the 2 statements are not both running")
    local victims = worker_pids()
    for _, pid in ipairs(victims) do assert(os.execute("kill -TERM " .. pid)) end
    for _, r in ipairs(requests) do r:wait() end     -- ended by the exit: no answer to check
    local exits
    deadline = sys.monotime() + 10
    repeat
      sys.sleep(0.1)
      exits = {}
      local f = assert(io.open(client.error_log))
      for line in f:lines() do
        local pid, how = line:match("worker process (%d+) exited (.*)$")
        if pid then exits[tonumber(pid)] = how end
      end
      f:close()
    until (exits[victims[1]] and exits[victims[2]]) or sys.monotime() > deadline
    for _, pid in ipairs(victims) do
      assert.are.equal("with code 0", exits[pid], "worker " .. pid)
    end
    local f = assert(io.open(client.error_log))
    local text = f:read("*a")
    f:close()
    local _, reports = text:gsub("engine INST: connection checked out at [^\n]*test_app%.lua:%d+ " ..
      "was never closed; returned by the garbage collector", "")
    assert.are.equal(2, reports, "leak reports in the error log")
  end)
end)
