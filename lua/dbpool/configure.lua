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
local core = require "dbpool.core"
local policy = require "dbpool.policy"

local known = {}
for _, name in ipairs(core.options()) do known[name] = true end

local function fail(message, ...)
  error("dbpool.configure: " .. message:format(...), 0)   -- dbpool.configure blames its caller
end

-- Unknown keys are reported where they were written: markets.US.pool_sise.
local function check_keys(t, where)
  if t == nil then return end
  if type(t) ~= "table" then fail("%s must be a table of options, got %s", where, type(t)) end
  for k in pairs(t) do
    if type(k) ~= "string" then fail("%s: option names must be strings, got %s", where, type(k)) end
    if not known[k] or k:find(".", 1, true) then
      local near = core.suggest(k)
      fail("unknown option '%s.%s'%s", where, k, near and (" (did you mean '" .. near .. "'?)") or "")
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

return function(dbpool, spec)
  if type(spec) ~= "table" then fail("expects a table, got %s", type(spec)) end
  for k in pairs(spec) do
    if k ~= "env" and k ~= "defaults" and k ~= "environments" and k ~= "markets" then
      fail("unknown key '%s' (expected env, defaults, environments, markets)", tostring(k))
    end
  end
  local env = spec.env or os.getenv("DBPOOL_ENV") or "development"
  local environments = spec.environments or {}
  if type(environments) ~= "table" then fail("environments must be a table, got %s", type(environments)) end
  if spec.environments and environments[env] == nil then
    fail("unknown environment '%s' (known: %s)", env, table.concat(sorted_keys(environments), ", "))
  end
  if type(spec.markets) ~= "table" or next(spec.markets) == nil then
    fail("markets must be a table of at least one market, got %s", type(spec.markets))
  end
  check_keys(spec.defaults, "defaults")
  check_keys(environments[env], "environments." .. env)

  local merged = {}
  local by_policy, policies = {}, {}       -- markets grouped by the policy they carry
  for _, market in ipairs(sorted_keys(spec.markets)) do
    check_keys(spec.markets[market], "markets." .. market)
    local options = merge(spec.defaults, environments[env], spec.markets[market])
    options.name = options.name or market
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

  local engines = {}
  for _, market in ipairs(sorted_keys(merged)) do
    local options = merged[market]
    options.policy = nil                    -- checked above, across all markets
    local ok, engine = pcall(dbpool.engine, options)
    if not ok then fail("markets.%s: %s", market, tostring(engine):gsub("^dbpool: ", "")) end
    engines[market] = engine
  end
  return engines, env
end
