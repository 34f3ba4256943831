-- The process-wide registry: one pool per engine name.
local dbpool = require "dbpool"
local core = require "dbpool.core"
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

  it("refuses a name outside its character set, naming the option, the set and what it got", function()
    local cases = {
      { "KG/replica1", [[got "KG/replica1" ('/' at byte 3: dbpool names replicas "<name>/replica<i>")]] },
      { "K\255G", [[got "K\xffG" (0xff at byte 2)]] },             -- invalid UTF-8: shown escaped
      { "Кыргыз", [[got "\xd0\x9a]] },                             -- valid UTF-8, but not ASCII
      { "a b", [[got "a b" (' ' at byte 2)]] },
      { ("x"):rep(64), 'got "' .. ("x"):rep(40) .. '..." (64 bytes)' },
      { "", "got an empty string" },
    }
    for _, case in ipairs(cases) do
      local ok, why = pcall(dbpool.engine, { name = case[1], dsn = helper.dsn })
      assert.is_false(ok)
      assert.matches("option 'name' must be 1 to 63 ASCII letters, digits, '_', '-', '.' or ':', "
        .. case[2], why, 1, true)
      assert.is_nil(why:find("[\128-\255]"), "the message is plain ASCII")
    end
    local e = dbpool.engine { name = ("x"):rep(62) .. ":", dsn = helper.dsn }   -- 63 bytes is fine
    assert.are.equal(("x"):rep(62) .. ":", e.name)
  end)

  it("keeps replica names for replicas: another state's get finds only the real ones", function()
    local name = helper.name("REP")
    -- What an engine named "<name>/replica1" used to make: a pool that
    -- another Lua state's dbpool.get(name) took for name's replica.
    assert.is_false(pcall(dbpool.engine, { name = name .. "/replica1", dsn = helper.dsn }))
    dbpool.engine { name = name, dsn = helper.dsn, replicas = { helper.dsn } }
    local found = core.find(name .. "/replica1")
    assert.is_truthy(found)
    assert.are.equal(name .. "/replica1", found:name())
    assert.is_nil(core.find(name .. "/replica2"))
  end)

  it("refuses an application_name longer than the server keeps (63 bytes), naming the limit", function()
    local ok, why = pcall(dbpool.engine, { name = helper.name("app"), dsn = helper.dsn,
                                           application_name = ("a"):rep(64) })
    assert.is_false(ok)
    assert.matches("option 'application_name' must be at most 63 bytes (what the server keeps: "
      .. "NAMEDATALEN - 1), got 64 bytes", why, 1, true)
    ok, why = pcall(dbpool.engine, { name = helper.name("app"), dsn = helper.dsn,
                                     application_name = ("a"):rep(10240) })
    assert.is_false(ok)
    assert.matches("got 10240 bytes", why, 1, true)
    local e = helper.engine { application_name = ("b"):rep(63) }
    local rows = assert(e:query("SELECT current_setting('application_name') AS a"))
    assert.are.equal(("b"):rep(63), rows[1].a)
  end)
end)
