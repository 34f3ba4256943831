-- Option validation: every option of DESIGN.md's table is checked, errors
-- name the option, what it must be and what it got, and an engine opens no
-- connection unless min_idle asks for it.
local dbpool = require "dbpool"
local helper = require "helper"

local function engine_error(opts)
  local base = { name = helper.name("opt"), dsn = helper.dsn }
  for k, v in pairs(opts) do base[k] = v end
  local ok, err = pcall(dbpool.engine, base)
  assert.is_false(ok, "expected an error")
  return err
end

describe("dbpool.engine options", function()
  local bad = {
    { { pool_size = -1 }, "option 'pool_size' must be an integer >= 0 (0 = no limit), or \"auto\", got -1" },
    { { pool_size = 2.5 }, "option 'pool_size' must be an integer >= 0 (0 = no limit), or \"auto\", got 2.5" },
    { { pool_size = "5" }, "option 'pool_size' must be an integer >= 0 (0 = no limit), or \"auto\", got string \"5\"" },
    { { pool_size = "big" }, "option 'pool_size' must be an integer >= 0 (0 = no limit), or \"auto\", got string \"big\"" },
    { { pool_size = "auto" }, "option 'auto.max' is required with pool_size = \"auto\" (the most connections the pool keeps), got none" },
    { { pool_size = "auto", auto = { max = 4, min = 5 } }, "option 'auto.min' must be at most auto.max (4), got 5" },
    { { pool_size = "auto", auto = { max = 0 } }, "option 'auto.max' must be an integer from 1 to 1000000, got 0" },
    { { pool_size = "auto", auto = { max = 1e9 } }, "option 'auto.max' must be an integer from 1 to 1000000, got 1000000000" },
    { { pool_size = "auto", auto = { max = 4, interval = 0 } }, "option 'auto.interval' must be a number of seconds between 0.01 and 86400, got 0" },
    { { pool_size = "auto", auto = { max = 4, interval = "5" } }, "option 'auto.interval' must be a number of seconds between 0.01 and 86400, got string \"5\"" },
    { { pool_size = "auto", auto = { mx = 4 } }, "unknown option 'auto.mx' (did you mean 'max'?)" },
    { { pool_size = "auto", auto = 4 }, "option 'auto' must be a table {min=, max=, interval=}, got number 4" },
    { { pool_size = "auto", auto = { 2, 5 } }, "option 'auto' takes named keys, as in auto = { key = value }, got the key [1]" },
    { { pool_size = "auto", auto = { max = 0 / 0 } }, "option 'auto.max' must be an integer from 1 to 1000000, got nan" },
    { { pool_size = "auto", auto = { max = 4, interval = -0 / 0 } }, "option 'auto.interval' must be a number of seconds between 0.01 and 86400, got nan" },
    { { pool_size = 5, auto = { max = 9 } }, "option 'auto' applies only with pool_size = \"auto\", got pool_size 5" },
    { { pool_size = "auto", auto = { max = 3 }, min_idle = 4 }, "option 'min_idle' must be at most auto.max (3), got 4" },
    { { max_overflow = -2 }, "option 'max_overflow' must be an integer >= 0, or -1 for unbounded, got -2" },
    { { pool_timeout = -0.5 }, "option 'pool_timeout' must be a number of seconds >= 0, got -0.5" },
    { { pool_timeout = "30" }, "option 'pool_timeout' must be a number of seconds >= 0, got string \"30\"" },
    { { pool_recycle = -0.5 }, "option 'pool_recycle' must be a number of seconds >= 0, or -1 for never, got -0.5" },
    { { recycle_jitter = 0.9 }, "option 'recycle_jitter' must be a fraction between 0 and 0.5, got 0.9" },
    { { pool_pre_ping = "yes" }, "option 'pool_pre_ping' must be a boolean, got string \"yes\"" },
    { { pre_ping_bypass = -1 }, "option 'pre_ping_bypass' must be a number of seconds >= 0, got -1" },
    { { reset_on_return = "rollbak" }, "option 'reset_on_return' must be \"rollback\", \"commit\" or false, got \"rollbak\"" },
    { { reset_on_return = true }, "option 'reset_on_return' must be \"rollback\", \"commit\" or false, got true" },
    { { use_lifo = 1 }, "option 'use_lifo' must be a boolean, got number 1" },
    { { min_idle = -1 }, "option 'min_idle' must be an integer >= 0, got -1" },
    { { min_idle = 6 }, "option 'min_idle' must be at most pool_size (5), got 6" },
    { { max_queries = 1.5 }, "option 'max_queries' must be an integer >= 0 (0 = never), got 1.5" },
    { { connect_timeout = -1 }, "option 'connect_timeout' must be a number of seconds >= 0 (0 = wait forever), got -1" },
    { { application_name = 7 }, "option 'application_name' must be a string of at most 63 bytes, got number 7" },
    { { statement_timeout = "30s" }, "option 'statement_timeout' must be an integer number of milliseconds >= 0, got string \"30s\"" },
    { { lock_timeout = -5 }, "option 'lock_timeout' must be an integer number of milliseconds >= 0, got -5" },
    { { idle_in_transaction_session_timeout = 0.5 }, "option 'idle_in_transaction_session_timeout' must be an integer number of milliseconds >= 0, got 0.5" },
    { { role = "replica" }, "option 'role' must be \"any\" or \"primary\", got \"replica\"" },
    { { pgbouncer = "true" }, "option 'pgbouncer' must be a boolean, got string \"true\"" },
    { { replicas = "postgresql://r/db" }, "option 'replicas' must be a list of DSN strings, got a string" },
    { { replicas = { 5 } }, "option 'replicas' must be a list of DSN strings, got number at [1]" },
    { { retry = 3 }, "option 'retry' must be a table {attempts=, base=, max=}, got number 3" },
    { { retry = { attempts = 0 } }, "option 'retry.attempts' must be an integer between 1 and 100, got 0" },
    { { retry = { atempts = 2 } }, "unknown option 'retry.atempts' (did you mean 'attempts'?)" },
    { { retry = { base = 1, max = 0.5 } }, "option 'retry.max' must be >= retry.base (1), got 0.5" },
    { { breaker = { failures = -1 } }, "option 'breaker.failures' must be an integer >= 0 (0 = breaker off), got -1" },
    { { breaker = { cooldown = "5" } }, "option 'breaker.cooldown' must be a number of seconds between 0 and 86400, got string \"5\"" },
    { { leak_threshold = -1 }, "option 'leak_threshold' must be a number of seconds >= 0 (0 = off), got -1" },
    { { echo = "on" }, "option 'echo' must be a boolean, got string \"on\"" },
    { { echo_pool = 0 }, "option 'echo_pool' must be a boolean, got number 0" },
    { { pool_sise = 5 }, "unknown option 'pool_sise' (did you mean 'pool_size'?)" },
    { { max_overflw = 5 }, "unknown option 'max_overflw' (did you mean 'max_overflow'?)" },
    { { pre_ping = true }, "unknown option 'pre_ping'" },
    { { [1] = "x" }, "option names must be strings, got number" },
    { { dsn = "" }, "option 'dsn' must be a non-empty libpq URI or key=value string, got an empty string" },
    { { name = false }, "option 'name' must be 1 to 63 ASCII letters, digits, '_', '-', '.' or ':', got boolean false" },
  }
  for _, case in ipairs(bad) do
    local opts, message = case[1], case[2]
    it("rejects: " .. message, function()
      local err = engine_error(opts)
      assert.is_truthy(err:find(message, 1, true), ("expected %q in %q"):format(message, err))
    end)
  end

  it("requires name and dsn", function()
    local ok, err = pcall(dbpool.engine, { dsn = helper.dsn })
    assert.is_false(ok)
    assert.matches("option 'name' is required", err)
    ok, err = pcall(dbpool.engine, { name = helper.name() })
    assert.is_false(ok)
    assert.matches("option 'dsn' is required", err)
  end)

  it("raises at the caller's line, not inside dbpool", function()
    local ok, err = pcall(function() dbpool.engine { name = "x", dsn = "y", pool_size = "1" } end)
    assert.is_false(ok)
    assert.matches("options_spec%.lua:%d+: dbpool: option 'pool_size'", err)
  end)

  it("rejects a non-table argument", function()
    local ok, err = pcall(dbpool.engine, "postgresql://x")
    assert.is_false(ok)
    assert.matches("expects a table of options, got string", err)
  end)

  it("accepts every documented option with a valid value", function()
    local e = helper.engine {
      pool_size = 3, max_overflow = -1, pool_timeout = 1.5, pool_recycle = 3600,
      recycle_jitter = 0.025, pool_pre_ping = true, pre_ping_bypass = 0.5,
      reset_on_return = false, use_lifo = true, min_idle = 0, max_queries = 1000,
      connect_timeout = 3, application_name = helper.name("app"), statement_timeout = 30000,
      lock_timeout = 1000, idle_in_transaction_session_timeout = 30000, role = "primary",
      pgbouncer = false, replicas = {}, retry = { attempts = 2, base = 0.1, max = 1 },
      breaker = { failures = 3, cooldown = 2 }, leak_threshold = 0, echo = false, echo_pool = false,
    }
    assert.are.equal(3, e.pool:size())
    assert.are.equal("QueuePool", e.pool:class())
  end)

  it("opens no connection when the engine is built", function()
    local e = helper.engine { pool_size = 3 }
    assert.are.equal(0, helper.backends(e.name))
    assert.are.equal(0, e.pool:checkedin())
    assert.are.equal(0, e:stats().connects)
  end)

  it("opens min_idle connections ahead of demand", function()
    local e = helper.engine { pool_size = 3, min_idle = 2 }
    assert.are.equal(2, helper.backends(e.name))
    assert.are.equal(2, e.pool:checkedin())
    assert.are.equal(0, e.pool:checkedout())
  end)
end)
