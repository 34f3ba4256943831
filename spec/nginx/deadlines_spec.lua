-- spec/nginx/deadlines_spec.lua: deadlines and min_idle inside an nginx
-- worker: a checkout whose connect hangs gives up at pool_timeout (the
-- yielding connect keeps the checkout's deadline); a pre-ping, conn:ping()
-- and engine:health() to a stopped backend (SIGSTOP, always resumed) yield
-- until ping_timeout while the worker serves other requests; and min_idle
-- is refilled by a timer, not by the request that lost a connection.  Runs
-- only under scripts/with-nginx.sh spec/nginx/nginx.conf (see
-- worker_spec.lua).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/nginx.conf") then return end
local socket = require "socket"

describe("inside an nginx worker", function()
  it("a checkout against a server that never answers gives up at pool_timeout", function()
    local listener = assert(socket.bind("127.0.0.1", 0))   -- accepts; never answers
    local _, port = listener:getsockname()
    local r = client.get("/silent?port=" .. port)
    listener:close()
    assert.are.equal(503, r.status, r.body)
    assert.are.equal("timeout", r.json.kind, r.body)
    local took = r.json.finished - r.json.started
    assert.is_true(took >= 0.9 and took < 2, ("took %.3f s"):format(took))
  end)

  -- GET pid_path answers the backend pid of an engine's one connection,
  -- left idle; that backend is stopped (SIGSTOP, resumed whatever happens)
  -- while GET slow_path uses it, and 0.2 s into that another request is
  -- served by the same (only) worker: it must not wait for the first.
  -- Returns slow_path's answer and the backend pid.
  local function while_stopped(pid_path, slow_path)
    local r = client.get(pid_path)
    assert.are.equal(200, r.status, r.body)
    local stopped, other = r.json.result, nil
    local ok, failure = pcall(function()
      assert(os.execute("kill -STOP " .. stopped))
      local slow = client.start(slow_path, 20)
      client.sleep(0.2)                       -- waiting for the ping's answer by now
      other = client.get("/phase/ok")
      r = slow:wait()
    end)
    os.execute("kill -CONT " .. stopped)
    assert(ok, failure)
    assert.are.equal(200, other.status, other.body)
    assert.is_true(other.seconds < 0.5, ("another request took %.3f s"):format(other.seconds))
    assert.are.equal(200, r.status, r.body)
    return r, stopped
  end

  it("a pre-ping that gets no answer yields: the worker serves others, and the checkout goes on at ping_timeout", function()
    local r, stopped = while_stopped("/preping/backend", "/preping/query")
    local got = r.json.result
    assert.are_not.equal(stopped, got.pid, "the stopped backend's connection was handed out")
    assert.are.equal(1, got.ping_timeouts)
    assert.are.equal(1, got.pre_ping_failures)
    assert.are.equal(2, got.connects)
    local took = r.json.finished - r.json.started
    assert.is_true(took >= 0.9 and took < 3, ("the checkout took %.3f s (ping_timeout 1 s)"):format(took))
  end)

  it("conn:ping() yields for its answer: a stopped backend times out at ping_timeout, the worker serving others", function()
    local live = client.get("/ping/conn")
    assert.are.equal(200, live.status, live.body)
    assert.is_true(live.json.result.ok, live.body)
    local r = while_stopped("/ping/conn?pid=1", "/ping/conn")
    local got = r.json.result
    assert.is_false(got.ok, r.body)
    assert.are.equal("timeout", got.kind, r.body)
    assert.matches("ping_timeout", got.message, 1, true)
    assert.are.equal(1, got.ping_timeouts)
    assert.is_true(got.took >= 0.9 and got.took < 3, ("the ping took %.3f s (ping_timeout 1 s)"):format(got.took))
  end)

  it("engine:health() yields for its checkout's pre-ping: the worker serves others meanwhile", function()
    local r = while_stopped("/ping/health?pid=1", "/ping/health")
    local got = r.json.result
    assert.are_not.equal("down", got.status, r.body)   -- the stopped connection was replaced
    assert.are.equal(1, got.pre_ping_failures)
    assert.is_true(got.took >= 0.9 and got.took < 3, ("health took %.3f s (ping_timeout 1 s)"):format(got.took))
  end)

  it("min_idle is refilled by a timer, not by the request that lost a connection", function()
    local r = client.get("/refill")
    assert.are.equal(200, r.status, r.body)
    assert.are.same({ by_caller = 0, idle = 2, connects = 1 }, r.json.result)
  end)
end)
