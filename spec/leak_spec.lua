-- leak_threshold: a checkout held longer is logged once, with the Lua
-- traceback of where it was checked out.
local helper = require "helper"
local sys = require "system"

local function checkout_here(e)   -- a named frame for the traceback to show
  return assert(e:connect())
end

describe("leak_threshold", function()
  it("logs a checkout held past it once, with its traceback, at the next checkout", function()
    local e = helper.engine { pool_size = 3, max_overflow = 0, leak_threshold = 0.1 }
    local held
    local log = helper.capture_log(function()
      held = checkout_here(e)
      sys.sleep(0.15)
      e:connect():close()          -- the engine notices the overdue checkout here
      e:connect():close()          -- ... and only once
    end)
    assert.are.equal(1, #log)
    assert.are.equal("warn", log[1].level)
    local msg = log[1].message
    assert.matches("^engine " .. e.name .. ": connection held for 0%.%d+ s, longer than "
      .. "leak_threshold %(0%.1 s%); checked out at:\nstack traceback:\n", msg)
    assert.matches("spec/leak_spec.lua:%d+: in %a* ?'?checkout_here", msg)
    log = helper.capture_log(function() held:close() end)
    assert.are.same({}, log)       -- reported already: not again at its return
    assert.are.equal(0, e.pool:checkedout())
  end)

  it("logs one found only at its return, and stays silent below it", function()
    local e = helper.engine { pool_size = 2, max_overflow = 0, leak_threshold = 0.1 }
    local log = helper.capture_log(function()
      local quick = checkout_here(e)
      quick:close()
      local slow = checkout_here(e)
      sys.sleep(0.12)
      slow:close()
    end)
    assert.are.equal(1, #log)
    assert.matches("connection returned after 0%.%d+ s, longer than leak_threshold", log[1].message)
    assert.matches("checkout_here", log[1].message)
    assert.are.equal(0, e:stats().leaks)    -- a late return is not a garbage-collector leak
  end)

  it("keeps watching a held checkout while other connections come and go", function()
    -- The other slot's checkouts are short next to the threshold even
    -- under valgrind (DBPOOL_TIME_SCALE): only the held one may be reported.
    local threshold = 0.1 * helper.time_scale
    local e = helper.engine { pool_size = 2, max_overflow = 0, leak_threshold = threshold }
    local log = helper.capture_log(function()
      local held = checkout_here(e)
      for _ = 1, 3 do e:connect():close() end   -- the other slot, traced and returned, reused
      sys.sleep(threshold * 1.5)
      e:connect():close()                       -- the scan finds the held one
      held:close()
    end)
    assert.are.equal(1, #log)
    assert.matches("connection held for %d+%.%d+ s, longer than leak_threshold", log[1].message)
  end)

  it("is off by default: no traceback kept, nothing logged", function()
    local e = helper.engine { pool_size = 1, max_overflow = 0 }
    local log = helper.capture_log(function()
      local c = checkout_here(e)
      sys.sleep(0.05)
      c:close()
    end)
    assert.are.same({}, log)
  end)
end)
