-- spec/nginx/fastpath_spec.lua: issue 19's request path inside nginx.
-- engine:query goes through LuaJIT's FFI (lua/dbpool/fastpath.lua and the
-- FFI part of lua/dbpool/ngx.lua) and answers exactly as the classic
-- binding does (spec/nginx/fastpath_cases.lua); a request killed mid-statement on
-- it loses no slot.  Runs only under scripts/with-nginx.sh
-- spec/nginx/nginx.conf; defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/nginx.conf") then return end

describe("engine:query through the FFI under nginx", function()
  it("answers every case as a Conn's conn:query does, and takes the plain ones itself", function()
    local r = client.get("/fastpath")
    assert.are.equal(200, r.status, r.body)
    local v = r.json.result
    assert.are.same({}, v.mismatches)
    assert.is_true(v.cases > 20)
    -- The cases it must take (plain SQL, string and small integer
    -- parameters) are more than half of them.
    assert.is_true(v.fast > v.cases / 2, ("only %d of %d cases took the FFI path"):format(v.fast, v.cases))
    assert.are.equal(0, v.checkedout)
  end)

  it("gives back the slot of a request killed while it waits, counted and reported as a leak", function()
    local r = client.get("/fastpath/killed")
    assert.are.equal(200, r.status, r.body)
    local v = r.json.result
    assert.are.equal(1, v.fast, "the killed statement took the FFI path")
    assert.are.equal(1, v.held)
    assert.is_number(v.pid)
    assert.is_true(v.query_seconds < 2, "the one connection was free again")
    assert.are.equal(1, v.leaks)
    local named = false
    for _, line in ipairs(client.error_lines { "warn" }) do
      if line:find("engine FASTKILL: connection checked out at [^ ]*test_app%.lua:%d+ was never closed") then
        named = true
      end
    end
    assert.is_true(named, "no leak report naming test_app.lua")
  end)
end)
