-- An app's own configuration specs, as a dbpool user writes them: the
-- checks a team ran against its SQLAlchemy settings, here on the options
-- dbpool.resolve gives for each environment.  No engine is built and no
-- connection opened, so production and test are checked in one run, with
-- no server:  busted examples/spec
local dbpool = require "dbpool"
require "dbpool.assertions"

local markets = dofile("examples/config/markets.lua")

describe("production pool configuration", function()
  local options, env = dbpool.resolve(markets("production"))

  local function each(fn)
    for name, o in pairs(options) do fn(name, o) end
  end

  it("is the production environment, with both markets, KG and US", function()
    assert.are.equal("production", env)
    assert.is_not_nil(options.KG)
    assert.is_not_nil(options.US)
  end)

  it("names each engine after its market", function()
    each(function(name, o) assert.are.equal(name, o.name) end)
  end)

  it("keeps at least 10 connections per market", function()
    each(function(_, o) assert.is_true(o.pool_size >= 10) end)
  end)

  it("allows at least 20 overflow connections, and twice the pool size", function()
    each(function(_, o)
      assert.is_true(o.max_overflow >= 20)
      assert.is_true(o.max_overflow >= 2 * o.pool_size)
    end)
  end)

  it("has a capacity of at least 30 connections per market", function()
    each(function(_, o) assert.is_true(o.pool_size + o.max_overflow >= 30) end)
  end)

  it("pings connections before use", function()
    each(function(_, o) assert.is_true(o.pool_pre_ping) end)
  end)

  it("recycles connections, not before an hour", function()
    each(function(_, o) assert.is_true(o.pool_recycle >= 3600) end)
  end)

  it("waits between 10 and 60 seconds for a connection", function()
    each(function(_, o) assert.is_true(o.pool_timeout >= 10 and o.pool_timeout <= 60) end)
  end)

  it("does not log pool events", function()
    each(function(_, o) assert.is_false(o.echo_pool) end)
  end)

  it("is production-ready by policy", function()
    assert.is_production_ready(options)
    each(function(_, o) assert.is_production_ready(o) end)
  end)

  it("is refused, naming the market, when a market breaks the policy", function()
    local config = markets("production")
    config.markets.KG.pool_size = 15
    assert.error_matches(function() dbpool.resolve(config) end,
      "KG: max_overflow is 20, must be at least 2 x pool_size (30)", nil, true)
  end)
end)

describe("test profile", function()
  local options, env = dbpool.resolve(markets("test"))

  it("is the test environment", function()
    assert.are.equal("test", env)
  end)

  it("satisfies the test policy and not the production one", function()
    assert.satisfies_policy(options, "test")
    assert.is_not_production_ready(options)
  end)

  it("fails fast: a checkout waits at most 5 seconds", function()
    for _, o in pairs(options) do assert.is_true(o.pool_timeout <= 5) end
  end)

  it("keeps the test database's connections, all markets together, at 20 or fewer", function()
    local total = 0
    for _, o in pairs(options) do total = total + o.pool_size + o.max_overflow end
    assert.is_true(total <= 20)
  end)
end)

describe("development profile", function()
  it("logs pool events", function()
    local options = dbpool.resolve(markets("development"))
    for _, o in pairs(options) do assert.is_true(o.echo_pool) end
  end)
end)
