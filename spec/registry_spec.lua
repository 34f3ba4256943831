-- The process-wide registry: one pool per engine name.
local dbpool = require "dbpool"
local helper = require "helper"

describe("the engine registry", function()
  it("returns the same pool for the same name and options", function()
    local name = helper.name("reg")
    local opts = { name = name, dsn = helper.dsn, pool_size = 2, application_name = name }
    local a = dbpool.engine(opts)
    local b = dbpool.engine(opts)
    assert.are.equal(a.pool, b.pool)
    local conn = assert(a:connect())
    assert.are.equal(1, b.pool:checkedout())   -- one pool, seen through both handles
    conn:close()
    assert.are.equal(1, b.pool:checkedin())
  end)

  it("refuses the same name with other options, naming the differing keys", function()
    local name = helper.name("reg")
    dbpool.engine { name = name, dsn = helper.dsn, pool_size = 2, pool_timeout = 5 }
    local ok, err = pcall(dbpool.engine, { name = name, dsn = helper.dsn, pool_size = 3,
                                           pool_timeout = 5, use_lifo = true })
    assert.is_false(ok)
    assert.matches("engine '" .. name .. "' already exists with different options: pool_size, use_lifo$", err)
  end)

  it("never shows a DSN (which may hold a password) in the conflict", function()
    local name = helper.name("reg")
    dbpool.engine { name = name, dsn = "postgresql://u:Hunter2pw@127.0.0.1:1/x" }
    local ok, err = pcall(dbpool.engine, { name = name, dsn = "postgresql://u:Other9pw@127.0.0.1:1/x" })
    assert.is_false(ok)
    assert.matches("different options: dsn", err)
    assert.is_nil(err:find("Hunter2pw", 1, true))
    assert.is_nil(err:find("Other9pw", 1, true))
  end)

  it("finds engines by name", function()
    local e = helper.engine()
    assert.are.equal(e, dbpool.get(e.name))
    assert.are.equal(e, dbpool.engines()[e.name])
    assert.is_nil(dbpool.get("no such engine"))
  end)
end)
