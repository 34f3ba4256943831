-- Policies, markets and budgets (dbpool.check, dbpool.configure,
-- dbpool.assertions, dbpool.budget, dbpool.suggest_pool_size).
local dbpool = require "dbpool"
local helper = require "helper"
require "dbpool.assertions"

local weak = { pool_size = 5, max_overflow = 5, pool_timeout = 90, pool_recycle = -1,
               pool_pre_ping = false, echo_pool = true }

describe("dbpool.check", function()
  it("lists every production violation at once, each naming option, value and bound", function()
    local ok, v = dbpool.check(weak, "production")
    assert.is_false(ok)
    assert.are.same({
      "options: pool_size is 5, must be at least 10",
      "options: max_overflow is 5, must be at least 20",
      "options: max_overflow is 5, must be at least 2 x pool_size (10)",
      "options: capacity (pool_size + max_overflow) is 10, must be at least 30",
      "options: pool_pre_ping is false, must be true",
      "options: pool_recycle is -1, must be at least 3600",
      "options: pool_timeout is 90, must be within 10..60",
      "options: echo_pool is true, must be false",
    }, v)
  end)

  it("passes a configuration that meets the production policy", function()
    local ok, v = dbpool.check({ pool_size = 10, max_overflow = 20, pool_timeout = 30,
      pool_recycle = 3600, pool_pre_ping = true }, dbpool.policies.production)
    assert.is_true(ok)
    assert.are.same({}, v)
  end)

  it("sums capacity across engines for the test policy", function()
    local ok, v = dbpool.check({ KG = { pool_size = 5, max_overflow = 5, pool_timeout = 5 },
                                 US = { pool_size = 5, max_overflow = 6, pool_timeout = 5 } }, "test")
    assert.is_false(ok)
    assert.are.same({ "total capacity across 2 engines is 21, must be at most 20" }, v)
  end)

  it("treats unbounded overflow as unbounded capacity", function()
    local _, v = dbpool.check({ pool_size = 2, max_overflow = -1, pool_timeout = 1 }, "test")
    assert.are.same({ "total capacity across 1 engine is unbounded, must be at most 20" }, v)
  end)

  it("checks live engines and user-written policies", function()
    local e = helper.engine { pool_size = 3, max_overflow = 1 }
    local mine = { { option = "pool_size", max = 2 }, { option = "reset_on_return", equals = "commit" } }
    local ok, v = dbpool.check(e, mine)
    assert.is_false(ok)
    assert.are.same({ e.name .. ": pool_size is 3, must be at most 2",
                      e.name .. ": reset_on_return is \"rollback\", must be \"commit\"" }, v)
  end)

  it("rejects malformed rules and unknown policies clearly", function()
    assert.has_error(function() dbpool.check(weak, "prod") end,
      "dbpool: unknown policy 'prod' (known: production, test)")
    local ok, err = pcall(dbpool.check, weak, { { option = "pool_sise", min = 1 } })
    assert.is_false(ok)
    assert.matches("'pool_sise' is not an option a rule can bound", err)
  end)

  it("rejects a rule with an unknown key or a malformed shape, naming it", function()
    for _, case in ipairs {
      { { capacity = { mni = 30 } }, "unknown key 'mni' in capacity (known: min, max)" },
      { { total_capacity = { max = 20, maks = 1 } }, "unknown key 'maks' in total_capacity" },
      { { option = "pool_size", min = 10, mx = 20 }, "unknown key 'mx' in the rule (known: option, min, max)" },
      { { option = "pool_pre_ping", equals = true, min = 1 }, "unknown key 'min' in the rule (known: option, equals)" },
      { { option = "max_overflow", at_least = 2, times = "pool_size", max = 3 }, "unknown key 'max' in the rule" },
      { { capacity = { min = 30 }, option = "pool_size" }, "unknown key 'option' in the rule (known: capacity)" },
      { { option = "pool_size", min = 1, [1] = "x" }, "unknown key number in the rule" },
      { { capacity = 30 }, "capacity bounds must be a table" },
      { { option = "pool_size", min = "10" }, "'min' must be a number, got string" },
      { { option = "pool_size" }, "give min, max, equals, or at_least with times" },
      { 42, "rule 1 must be a table" },
      { { capacity = {} }, "capacity bounds need min or max" },
      { { total_capacity = {} }, "capacity bounds need min or max" },
      { { option = "pool_size", min = 0 / 0 }, "'min' must be a number, got nan" },
    } do
      local ok, err = pcall(dbpool.check, weak, { case[1] })
      assert.is_false(ok, case[2])
      assert.matches(case[2], err, 1, true)
    end
    local ok, err = pcall(dbpool.check, weak, { option = "pool_size", min = 100 })
    assert.is_false(ok)
    assert.matches("a policy is a list of rules, got a single rule", err, 1, true)
    ok, err = pcall(dbpool.check, weak, { nmae = "x", { option = "pool_size", min = 1 } })
    assert.is_false(ok)
    assert.matches("unknown key 'nmae' in a policy", err, 1, true)
  end)

  it("refuses to build an engine that violates its policy, listing every violation", function()
    local name = helper.name()
    local ok, err = pcall(dbpool.engine, { name = name, dsn = helper.dsn, pool_size = 10,
      max_overflow = 20, pool_timeout = 30, pool_recycle = 60, policy = "production" })
    assert.is_false(ok)
    assert.are.equal("dbpool: policy 'production' refused:\n"
      .. "  - " .. name .. ": pool_pre_ping is false, must be true\n"
      .. "  - " .. name .. ": pool_recycle is 60, must be at least 3600", err)
    assert.is_nil(dbpool.get(name))
  end)
end)

describe("busted assertions", function()
  it("fail with the list of violations", function()
    local ok, err = pcall(function() assert.is_production_ready(weak) end)
    assert.is_false(ok)
    err = tostring(err.message or err)
    assert.matches("to satisfy policy 'production'", err, 1, true)
    assert.matches("pool_pre_ping is false, must be true", err, 1, true)
    assert.is_not_production_ready(weak)
    assert.satisfies_policy({ pool_timeout = 5, pool_size = 1, max_overflow = 1 }, "test")
  end)
end)

describe("dbpool.configure", function()
  local function spec(env, markets)
    return {
      env = env,
      defaults = { pool_size = 3, pool_timeout = 7, application_name = "defaults" },
      environments = { test = { pool_size = 2, max_overflow = 1 }, staging = { pool_timeout = 9 } },
      markets = markets,
    }
  end

  it("merges defaults < environment < market and names engines by market", function()
    local a, b = helper.name("KG"), helper.name("US")
    local engines, env = dbpool.configure(spec("test", {
      [a] = { dsn = helper.dsn, max_overflow = 4 }, [b] = { dsn = helper.dsn } }))
    assert.are.equal("test", env)
    assert.are.same({ 2, 4, 7 }, { engines[a].pool:size(), engines[a].options.max_overflow,
                                   engines[a].options.pool_timeout })
    assert.are.same({ 2, 1 }, { engines[b].pool:size(), engines[b].options.max_overflow })
    assert.are.equal(engines[a], dbpool.get(a))
  end)

  it("takes the environment from DBPOOL_ENV when env is not given", function()
    local s = spec(nil, { [helper.name("X")] = { dsn = helper.dsn } })
    s.environments = { [os.getenv("DBPOOL_ENV") or "development"] = { pool_size = 4 } }
    local engines, env = dbpool.configure(s)
    assert.are.equal(os.getenv("DBPOOL_ENV") or "development", env)
    local _, e = next(engines)
    assert.are.equal(4, e.pool:size())
  end)

  it("names where an unknown option was written", function()
    local name = helper.name("US")
    local ok, err = pcall(dbpool.configure, spec("test", { [name] = { dsn = helper.dsn, pool_sise = 3 } }))
    assert.is_false(ok)
    assert.matches("unknown option 'markets." .. name .. ".pool_sise' (did you mean 'pool_size'?)", err, 1, true)
    ok, err = pcall(dbpool.configure, { env = "test", environments = { test = { pool_tiemout = 1 } },
      markets = { [name] = { dsn = helper.dsn } } })
    assert.matches("unknown option 'environments.test.pool_tiemout' (did you mean 'pool_timeout'?)", err, 1, true)
  end)

  it("refuses an unknown environment", function()
    local ok, err = pcall(dbpool.configure, spec("prod", { [helper.name()] = { dsn = helper.dsn } }))
    assert.is_false(ok)
    assert.matches("unknown environment 'prod' (known: staging, test)", err, 1, true)
  end)

  it("checks a policy across every market before building any", function()
    local a, b = helper.name("KG"), helper.name("US")
    local s = spec("test", { [a] = { dsn = helper.dsn, max_overflow = 9 }, [b] = { dsn = helper.dsn, max_overflow = 9 } })
    s.environments.test.policy = "test"
    s.environments.test.pool_timeout = 5
    local ok, err = pcall(dbpool.configure, s)
    assert.is_false(ok)
    assert.matches("total capacity across 2 engines is 22, must be at most 20", err, 1, true)
    assert.is_nil(dbpool.get(a))
  end)
end)

describe("dbpool.resolve", function()
  local function spec(env, markets)
    return {
      env = env,
      defaults = { pool_size = 3, pool_timeout = 7 },
      environments = { test = { pool_size = 2, max_overflow = 1, pool_timeout = 5, policy = "test" },
                       production = { pool_size = 10, max_overflow = 20, pool_recycle = 3600,
                                      pool_timeout = 30, pool_pre_ping = true, policy = "production" } },
      markets = markets,
    }
  end

  it("gives the options configure would build, by market, and env, building no engine", function()
    local a, b = helper.name("KG"), helper.name("US")
    local options, env = dbpool.resolve(spec("test", { [a] = { dsn = helper.dsn, max_overflow = 4 },
                                                       [b] = { dsn = helper.dsn } }))
    assert.are.equal("test", env)
    assert.are.same({ name = a, dsn = helper.dsn, pool_size = 2, max_overflow = 4, pool_timeout = 5,
                      policy = "test" }, options[a])
    assert.are.equal(b, options[b].name)
    assert.is_nil(dbpool.get(a))
    assert.is_nil(dbpool.get(b))
    local engines = dbpool.configure(spec("test", { [a] = { dsn = helper.dsn, max_overflow = 4 } }))
    local built = engines[a].options
    assert.are.same(options[a], (function() local o = {} for k, v in pairs(built) do o[k] = v end
      o.policy = "test"; return o end)())
  end)

  it("validates each market as engine creation does, naming the market", function()
    local ok, err = pcall(dbpool.resolve, spec("test", { KG = { dsn = "x", pool_size = -1 } }))
    assert.is_false(ok)
    assert.matches("dbpool.resolve: markets.KG: option 'pool_size' must be an integer >= 0", err, 1, true)
    ok, err = pcall(dbpool.resolve, spec("test", { KG = { pool_size = 1 } }))
    assert.matches("markets.KG: option 'dsn' is required", err, 1, true)
    ok, err = pcall(dbpool.resolve, spec("test", { KG = { dsn = "x", pool_sise = 1 } }))
    assert.matches("unknown option 'markets.KG.pool_sise' (did you mean 'pool_size'?)", err, 1, true)
  end)

  it("refuses a policy violation across markets, listing every one", function()
    local ok, err = pcall(dbpool.resolve, spec("test", { KG = { dsn = "x", max_overflow = 9 },
                                                         US = { dsn = "y", max_overflow = 9 } }))
    assert.is_false(ok)
    assert.matches("total capacity across 2 engines is 22, must be at most 20", err, 1, true)
  end)

  it("resolves test and production of the same markets in one run, for the assertions", function()
    local markets = { KG = { dsn = "x" }, US = { dsn = "y" } }
    local test = dbpool.resolve(spec("test", markets))
    local production = dbpool.resolve(spec("production", markets))
    assert.satisfies_policy(test, "test")
    assert.is_not_production_ready(test)
    assert.is_production_ready(production)
    local ok, err = pcall(function() assert.is_production_ready(test) end)
    assert.is_false(ok)
    assert.matches("Expected 'KG', 'US' to satisfy policy 'production'", tostring(err.message or err), 1, true)
  end)
end)

describe("dbpool._VERSION", function()
  it("is MAJOR.MINOR.PATCH", function()
    assert.matches("^%d+%.%d+%.%d+$", dbpool._VERSION)
  end)
end)

describe("dbpool.configure with a policy per market", function()
  it("checks each market against its own policy", function()
    local a, b = helper.name("KG"), helper.name("US")
    local ok, err = pcall(dbpool.configure, { env = "x", environments = { x = {} }, markets = {
      [a] = { dsn = helper.dsn, pool_timeout = 9, policy = "test" },
      [b] = { dsn = helper.dsn, pool_size = 1, policy = { { option = "pool_size", min = 2 } } },
    } })
    assert.is_false(ok)
    assert.matches(a .. ": pool_timeout is 9, must be at most 5", err, 1, true)
    assert.matches(b .. ": pool_size is 1, must be at least 2", err, 1, true)
    assert.is_nil(err:find(b .. ": pool_timeout", 1, true))
  end)
end)

describe("dbpool.budget", function()
  it("compares instances x capacity + reserve with the server's limits", function()
    local e = helper.engine { pool_size = 4, max_overflow = 6 }
    local b = dbpool.budget { instances = 3, engines = { e }, reserve = 5,
                              max_connections = 37, superuser_reserved_connections = 3 }
    assert.are.same({ false, 35, 34 }, { b.fits, b.needed, b.available })
    assert.matches("^Does not fit: 3 instance%(s%) x 10 connections", b.sentence)
  end)

  it("reads max_connections and the role's and database's limits from a live server", function()
    local e = helper.engine { pool_size = 1, max_overflow = 1 }
    assert(helper.admin():query("ALTER DATABASE shop_us CONNECTION LIMIT 9"))
    local us = helper.engine { dsn = helper.dsn:gsub("/postgres$", "/shop_us"), pool_size = 1, max_overflow = 0 }
    local b = assert(dbpool.budget { instances = 2, engines = { e }, live = us })
    assert.are.equal(tonumber(os.getenv("DBPOOL_PG_MAX_CONNECTIONS")) or 300, b.max_connections)  -- scripts/pg-start.sh sets it
    assert.are.equal(3, b.superuser_reserved_connections)
    assert.are.equal(9, b.database_limit)
    assert.are.same({ true, 4, 9 }, { b.fits, b.needed, b.available })
    assert.matches("the database's connection limit", b.sentence, 1, true)
    assert(helper.admin():query("ALTER DATABASE shop_us CONNECTION LIMIT -1"))
  end)
end)

describe("dbpool.suggest_pool_size", function()
  it("gives the adaptive formula and the cores x 2 + spindles rule with reasons", function()
    local s = dbpool.suggest_pool_size { cpus = 8, mem_gb = 4, spindles = 1 }
    assert.are.same({ 8, 17 }, { s.adaptive.pool_size, s.classic.pool_size })
    assert.matches("bounded to 5..50", s.adaptive.reason, 1, true)
    assert.are.equal(50, dbpool.suggest_pool_size { cpus = 64, mem_gb = 512 }.adaptive.pool_size)
    assert.are.equal(5, dbpool.suggest_pool_size { cpus = 1, mem_gb = 1 }.adaptive.pool_size)
    assert.has_error(function() dbpool.suggest_pool_size { cpus = "8", mem_gb = 4 } end)
  end)
end)
