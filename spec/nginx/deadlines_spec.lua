-- spec/nginx/deadlines_spec.lua: deadlines and min_idle inside an nginx
-- worker: a checkout whose connect hangs gives up at pool_timeout (the
-- yielding connect keeps the checkout's deadline), and min_idle is refilled
-- by a timer, not by the request that lost a connection.  Runs only under
-- scripts/with-nginx.sh spec/nginx/nginx.conf (see worker_spec.lua).
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

  it("min_idle is refilled by a timer, not by the request that lost a connection", function()
    local r = client.get("/refill")
    assert.are.equal(200, r.status, r.body)
    assert.are.same({ by_caller = 0, idle = 2, connects = 1 }, r.json.result)
  end)
end)
