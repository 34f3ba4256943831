-- dbpool.remove(name): dispose an engine and take its name out of the
-- process's registry (DESIGN.md, "Lives with its host's lifecycle").
local dbpool = require "dbpool"
local helper = require "helper"

describe("dbpool.remove", function()
  it("disposes the engine and forgets its name, so that it can be made again with other options", function()
    local name = helper.name("rm")
    local old = dbpool.engine { name = name, dsn = helper.dsn, pool_size = 2, application_name = name }
    assert(old:query("SELECT 1"))
    assert.are.equal(1, helper.settled_backends(name, 1))
    assert.is_true(dbpool.remove(name))
    assert.are.equal(0, helper.settled_backends(name, 0))   -- the idle connection is closed
    assert.is_nil(dbpool.get(name))
    local new = dbpool.engine { name = name, dsn = helper.dsn, pool_size = 3, application_name = name }
    assert.are.equal(3, new.pool:size())
    assert.are.equal(new, dbpool.get(name))
    dbpool.remove(name)
  end)

  it("answers false for a name it does not know", function()
    assert.is_false(dbpool.remove(helper.name("rm-none")))
  end)

  it("closes a connection checked out before the removal when it is returned", function()
    local name = helper.name("rm")
    local e = dbpool.engine { name = name, dsn = helper.dsn, pool_size = 2, application_name = name }
    local conn = assert(e:connect())
    assert.is_true(dbpool.remove(name))
    assert(conn:query("SELECT 1"))                          -- still usable until returned
    conn:close()
    assert.are.equal(0, helper.settled_backends(name, 0))
  end)

  it("makes the old engine object raise on use, naming the engine", function()
    local name = helper.name("rm")
    local e = dbpool.engine { name = name, dsn = helper.dsn }
    dbpool.remove(name)
    local ok, err = pcall(function() return e:query("SELECT 1") end)
    assert.is_false(ok)
    assert.matches("engine '" .. name .. "' was removed %(dbpool.remove%)", err)
    assert.matches("removed", tostring(e))
  end)

  it("raises when the name is not a string", function()
    assert.has_error(function() dbpool.remove(42) end,
      "bad argument #1 to 'remove' (string expected, got number)")
  end)
end)
