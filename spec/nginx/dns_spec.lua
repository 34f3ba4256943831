-- spec/nginx/dns_spec.lua: no host name is looked up on a worker's event
-- loop (DESIGN.md, "Inside nginx").  The DSN names db.dbpool.test, which only
-- a name server that answers DBPOOL_DNS_DELAY_MS late knows
-- (scripts/with-dns-stub.sh); one worker serves a request that needs the
-- name and a control request that needs nothing.  Runs only under
-- scripts/with-nginx.sh spec/nginx/dns.conf; defines no test otherwise.
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec/nginx"
package.path = here .. "/?.lua;" .. package.path
local client = require "nginx_client"
if not client.serving("spec/nginx/dns.conf") then return end

local delay_ms = tonumber(os.getenv("DBPOOL_DNS_DELAY_MS") or "")
local dns_log = os.getenv("DBPOOL_DNS_LOG")

-- How many queries the name server has seen for name.
local function lookups(name)
  local n, f = 0, assert(io.open(dns_log))
  for line in f:lines() do
    if line:match("^(%S+)") == name then n = n + 1 end
  end
  f:close()
  return n
end

local function log_lines(pattern)
  local found, f = {}, assert(io.open(client.error_log))
  for line in f:lines() do
    if line:match(pattern) then found[#found + 1] = line end
  end
  f:close()
  return found
end

describe("a host name in the DSN, with a name server slow to answer", function()
  if not delay_ms then
    pending("needs root for the name server (port 53) and a mount namespace; see scripts/with-dns-stub.sh")
    return
  end
  local delay = delay_ms / 1000

  it("is looked up off the event loop: the worker serves other requests meanwhile", function()
    local named = client.start("/named", 60)
    -- The control starts while the lookup is under way and must not wait for it.
    local sys = require "system"
    sys.sleep(math.min(0.3, delay / 4))
    local control = client.start("/yield?ms=10", 30):wait()
    assert.are.equal(200, control.status)
    assert.is_true(control.seconds < delay / 2,
      ("the control took %.3f s while the name server takes %.3f s"):format(control.seconds, delay))
    local res = named:wait()
    assert.are.equal(200, res.status, res.body)
    assert.are.equal(1, res.json.one, res.body)
    assert.is_true(res.json.seconds >= delay * 0.8,
      ("the first connect took %.3f s: it cannot have waited for the name server"):format(res.json.seconds))
    assert.is_true(lookups("db.dbpool.test") >= 1)
  end)

  it("connects again from the addresses looked up before, without asking the name server", function()
    local before = lookups("db.dbpool.test")
    for _ = 1, 3 do
      local res = client.start("/named", 30):wait()
      assert.are.equal(200, res.status, res.body)
      assert.are.equal(1, res.json.one, res.body)
      assert.is_true(res.json.seconds < delay / 2,
        ("a new connection took %.3f s: it waited for the name server"):format(res.json.seconds))
    end
    assert.are.equal(before, lookups("db.dbpool.test"))
  end)

  it("fails a checkout for a name the server does not know, kind connect, naming it", function()
    local unknown = client.start("/unknown", 60)
    local control = client.start("/yield?ms=10", 30):wait()
    assert.is_true(control.seconds < delay / 2)
    local res = unknown:wait()
    assert.are.equal(200, res.status, res.body)
    assert.is_false(res.json.connected)
    assert.are.equal("connect", res.json.kind)
    assert.matches("nx.dbpool.invalid", res.json.error, 1, true)
  end)

  it("leaves no warning or error in nginx's log (no ngx.sleep warnings either)", function()
    local bad = log_lines("%[(%a+)%]")
    local worse = {}
    for _, line in ipairs(bad) do
      local level = line:match("%[(%a+)%]")
      if level == "warn" or level == "error" or level == "crit" or level == "alert" or level == "emerg" then
        worse[#worse + 1] = line
      end
    end
    assert.are.same({}, worse)
  end)
end)
