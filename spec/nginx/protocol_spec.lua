-- spec/nginx/protocol_spec.lua: issue 20's operations under nginx wait by
-- yielding, never blocking the worker: while request A runs a pipeline, a
-- stream, a COPY either way or a Listener's wait that takes 1.5 s on the
-- server, request B (a fast query) sent 0.3 s later to the same worker is
-- served before A ends.  As worker_spec.lua, judged on the server's clock.
-- Runs only under scripts/with-nginx.sh spec/nginx/nginx.conf.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/nginx.conf") then return end

local LEAD = 0.3

local describe_pair = client.describe_pair
local function a_then_b(path_a, path_b) return client.a_then_b(path_a, path_b, LEAD) end

describe("one nginx worker: issue 20's operations yield", function()
  setup(function()
    for _ = 1, 2 do assert.are.equal(200, client.get("/fast").status) end
  end)

  local cases = {
    { "/proto/pipeline?ms=1500", 3, "a pipeline" },
    { "/proto/stream?ms=1500", 6, "a stream" },
    { "/proto/copy_to?ms=1500", "1,2,3", "COPY TO STDOUT" },
    { "/proto/copy_from?ms=1500", 3, "COPY FROM STDIN" },
    { "/proto/listen?ms=1500", "late", "a Listener's wait" },
  }
  for _, case in ipairs(cases) do
    local path, want, what = case[1], case[2], case[3]
    it(what .. " waiting 1.5 s on the server does not delay a fast query of the same worker", function()
      local ja, jb, ra, rb = a_then_b(path, "/fast")
      local detail = describe_pair(ja, jb, ra, rb)
      assert.are.equal(200, ra.status, detail)
      assert.are.equal(200, rb.status, detail)
      assert.are.equal(want, ja.result, detail)
      assert.are.equal(ja.pid, jb.pid, "one worker serves both")
      assert.is_true(jb.started < ja.finished,
        "B's handler must start while A waits (a blocked worker starts it after)\n" .. detail)
      assert.is_true(jb.finished < ja.finished, "B finished before A\n" .. detail)
      assert.is_true(ja.finished - ja.started >= 1.4, "A waited on the server\n" .. detail)
      assert.is_true(rb.seconds < 1.0, "B took under 1 s\n" .. detail)
    end)
  end
end)
