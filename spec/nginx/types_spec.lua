-- spec/nginx/types_spec.lua: issue 20's decoding, typed parameters,
-- decoders (their pg_type lookup) and nested transactions work unchanged on
-- the yielding path inside nginx.  Runs only under scripts/with-nginx.sh
-- spec/nginx/nginx.conf; defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/nginx.conf") then return end
local cjson = require "cjson"

describe("typed results under nginx", function()
  it("decode json, arrays, numeric as text and an enum by its decoder; nest a transaction", function()
    for _ = 1, 2 do                  -- the first request looks the enum up, the second need not
      local r = client.get("/types")
      assert.are.equal(200, r.status, r.body)
      local got = r.json.result
      assert.are.same({ 1, cjson.null }, got.doc.a)
      assert.are.equal("x", got.doc.b)
      assert.are.same({ { 1, 2 }, { 3, cjson.null } }, got.grid)
      assert.are.equal("1.50", got.n)
      assert.are.same({ "OK", "HAPPY" }, got.moods)
      assert.are.same({ 4, cjson.null }, got.echoed)
      assert.are.same({ ns = { 1 }, undone = true }, got.tx)
    end
  end)
end)
