-- dbpool.configure: every market's engine from one Lua table.
--
--   dbpool.configure {
--     env = "production",                  -- default: $DBPOOL_ENV, else "development"
--     defaults = { pool_pre_ping = true }, -- every market, every environment
--     environments = { test = {...}, production = {...} },
--     markets = { KG = { dsn = "..." }, US = { dsn = "..." } },
--   }
--
-- Options merge in this order, later winning: defaults < environments[env]
-- < markets[name].  The market's key is the engine name unless the market
-- sets `name`.  Each policy in the merged options is checked against all the
-- markets that carry it at once (so total-capacity rules see every such
-- engine) before any engine is built.
--
-- resolve does all of that but build: the options by market and env, with
-- no engine and no connection (dbpool.resolve).  configure is resolve, then
-- one engine per market.
local core = require "dbpool.core"
local policy = require "dbpool.policy"

local known = {}
for _, name in ipairs(core.options()) do known[name] = true end

-- Raises "<who>: message" (who: dbpool.configure or dbpool.resolve); the
-- public function blames its caller.
local function fail(who, message, ...)
  error(who .. ": " .. message:format(...), 0)
end

-- Unknown keys are reported where they were written: markets.US.pool_sise.
local function check_keys(who, t, where)
  if t == nil then return end
  if type(t) ~= "table" then fail(who, "%s must be a table of options, got %s", where, type(t)) end
  for k in pairs(t) do
    if type(k) ~= "string" then fail(who, "%s: option names must be strings, got %s", where, type(k)) end
    if not known[k] or k:find(".", 1, true) then
      local near = core.suggest(k)
      fail(who, "unknown option '%s.%s'%s", where, k, near and (" (did you mean '" .. near .. "'?)") or "")
    end
  end
end

local function merge(...)
  local out = {}
  for i = 1, select("#", ...) do
    local t = select(i, ...)
    if t then for k, v in pairs(t) do out[k] = v end end
  end
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local M = {}

-- resolve(spec[, who]) -> { market = options }, env.  Raises, naming where,
-- on a bad spec, an unknown or invalid option (the core's own validation,
-- as engine creation would run it), or a policy violation.
function M.resolve(spec, who)
  who = who or "dbpool.resolve"
  if type(spec) ~= "table" then fail(who, "expects a table, got %s", type(spec)) end
  for k in pairs(spec) do
    if k ~= "env" and k ~= "defaults" and k ~= "environments" and k ~= "markets" then
      fail(who, "unknown key '%s' (expected env, defaults, environments, markets)", tostring(k))
    end
  end
  local env = spec.env or os.getenv("DBPOOL_ENV") or "development"
  local environments = spec.environments or {}
  if type(environments) ~= "table" then fail(who, "environments must be a table, got %s", type(environments)) end
  if spec.environments and environments[env] == nil then
    fail(who, "unknown environment '%s' (known: %s)", env, table.concat(sorted_keys(environments), ", "))
  end
  if type(spec.markets) ~= "table" or next(spec.markets) == nil then
    fail(who, "markets must be a table of at least one market, got %s", type(spec.markets))
  end
  check_keys(who, spec.defaults, "defaults")
  check_keys(who, environments[env], "environments." .. env)

  local merged = {}
  local by_policy, policies = {}, {}       -- markets grouped by the policy they carry
  for _, market in ipairs(sorted_keys(spec.markets)) do
    check_keys(who, spec.markets[market], "markets." .. market)
    local options = merge(spec.defaults, environments[env], spec.markets[market])
    options.name = options.name or market
    -- The core reads the options as engine creation does: types, bounds,
    -- required keys; nothing is opened.
    local ok, err = pcall(core.check, { options }, {})
    if not ok then fail(who, "markets.%s: %s", market, tostring(err):gsub("^dbpool: ", "")) end
    merged[market] = options
    local p = options.policy
    if p ~= nil then
      if not by_policy[p] then
        by_policy[p] = {}
        policies[#policies + 1] = p
      end
      by_policy[p][market] = options
    end
  end
  -- Each policy sees every market that carries it at once (so total-capacity
  -- rules add them up); all refusals are reported together.
  local refusals = {}
  for _, p in ipairs(policies) do
    refusals[#refusals + 1] = policy.refusal(by_policy[p], p)
  end
  if #refusals > 0 then error(table.concat(refusals, "\n"), 0) end
  return merged, env
end

-- configure(dbpool, spec) -> { market = Engine }, env: resolve, then build.
-- A refused configuration builds nothing.
function M.configure(dbpool, spec)
  local merged, env = M.resolve(spec, "dbpool.configure")
  local engines = {}
  for _, market in ipairs(sorted_keys(merged)) do
    local options = merge(merged[market])
    options.policy = nil                    -- checked by resolve, across all markets
    local ok, engine = pcall(dbpool.engine, options)
    if not ok then
      fail("dbpool.configure", "markets.%s: %s", market, tostring(engine):gsub("^dbpool: ", ""))
    end
    engines[market] = engine
  end
  return engines, env
end

return M
