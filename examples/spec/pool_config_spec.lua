-- An app's own configuration tests, written as a dbpool user would: the
-- twelve checks a team ran against its SQLAlchemy settings, on dbpool.
local dbpool = require "dbpool"
require "dbpool.assertions"

local markets = dofile("examples/config/markets.lua")

describe("production pool configuration", function()
  local engines = dbpool.configure(markets("production"))

  local function each(fn)
    for name, engine in pairs(engines) do fn(name, engine, engine.options) end
  end

  it("uses QueuePool for every market", function()
    each(function(_, e) assert.are.equal("QueuePool", e.pool:class()) end)
  end)

  it("keeps at least 10 connections per market", function()
    each(function(_, e) assert.is_true(e.pool:size() >= 10) end)
  end)

  it("allows at least 20 overflow connections", function()
    each(function(_, _, o) assert.is_true(o.max_overflow >= 20) end)
  end)

  it("pings connections before use", function()
    each(function(_, _, o) assert.is_true(o.pool_pre_ping) end)
  end)

  it("recycles connections after at most an hour", function()
    each(function(_, _, o) assert.is_true(o.pool_recycle >= 3600) end)
  end)

  it("waits between 10 and 60 seconds for a connection", function()
    each(function(_, _, o) assert.is_true(o.pool_timeout >= 10 and o.pool_timeout <= 60) end)
  end)

  it("configures both markets, KG and US", function()
    assert.is_not_nil(engines.KG)
    assert.is_not_nil(engines.US)
  end)

  it("does not log pool events in production", function()
    each(function(_, _, o) assert.is_false(o.echo_pool) end)
  end)

  it("has a capacity of at least 30 connections per market", function()
    each(function(_, e) assert.is_true(e.pool:size() + e:stats().max_overflow >= 30) end)
  end)

  it("is production-ready by policy", function()
    assert.is_production_ready(engines)
    each(function(_, e) assert.is_production_ready(e) end)
  end)

  it("returns connections to the pool after use", function()
    each(function(_, e)
      local before = e.pool:checkedout()
      local rows = assert(e:with(function(conn) return conn:query("SELECT 1 AS one") end))
      assert.are.equal(1, rows[1].one)
      assert.are.equal(before, e.pool:checkedout())
      assert.is_true(e.pool:checkedin() >= 1)
    end)
  end)

  it("allows overflow of at least twice the pool size", function()
    each(function(_, _, o) assert.is_true(o.max_overflow >= 2 * o.pool_size) end)
  end)
end)

describe("test profile", function()
  it("satisfies the test policy and not the production one", function()
    local spec = markets("test")
    local options = {}
    for name, market in pairs(spec.markets) do
      local o = { name = name, dsn = market.dsn }
      for k, v in pairs(spec.environments.test) do o[k] = v end
      options[name] = o
    end
    assert.satisfies_policy(options, "test")
    assert.is_not_production_ready(options)
  end)
end)
