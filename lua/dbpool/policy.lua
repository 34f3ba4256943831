-- Policies: plain Lua tables of rules, checked by the C core (policy.c).
--
-- A policy is a list of rules.  Each rule is one of:
--   { option = "pool_size", min = 10 }               option >= 10
--   { option = "pool_timeout", max = 5 }              option <= 5
--   { option = "pool_timeout", min = 10, max = 60 }   within 10..60
--   { option = "pool_pre_ping", equals = true }       a required value
--   { option = "max_overflow", at_least = 2, times = "pool_size" }   a ratio
--   { capacity = { min = 30 } }                        pool_size + max_overflow, per engine
--   { total_capacity = { max = 20 } }                  summed across the engines checked
-- pool_size = 0 and max_overflow = -1 count as unbounded capacity (the core's
-- dbp_config_capacity decides; policy.capacity gives it to Lua).
local core = require "dbpool.core"

local policy = {}

policy.policies = {
  production = {
    { option = "pool_size", min = 10 },
    { option = "max_overflow", min = 20 },
    { option = "max_overflow", at_least = 2, times = "pool_size" },
    { capacity = { min = 30 } },
    { option = "pool_pre_ping", equals = true },
    { option = "pool_recycle", min = 3600 },
    { option = "pool_timeout", min = 10, max = 60 },
    { option = "echo_pool", equals = false },
  },
  test = {
    { option = "pool_timeout", max = 5 },
    { total_capacity = { max = 20 } },
  },
}

local known = {}
for _, name in ipairs(core.options()) do known[name] = true end

local function is_engine(x)
  return type(x) == "table" and x.pool ~= nil and type(x.connect) == "function"
end

-- An options table, as opposed to a list or a map of engines/options.
local function is_options(t)
  if t[1] ~= nil then return false end
  for k, v in pairs(t) do
    if known[k] or type(v) ~= "table" then return true end
  end
  return next(t) == nil
end

-- What the core checks: a Pool handle, or a copy of an options table with
-- name/dsn filled in, since a profile need not name a server.
local function subject(x, name)
  if is_engine(x) then return x.pool end
  if type(x) ~= "table" then
    error("dbpool.check: expected options, an engine, or a list or map of them, got " .. type(x), 0)
  end
  local copy = {}
  for k, v in pairs(x) do copy[k] = v end
  copy.name = copy.name or name or "options"
  copy.dsn = copy.dsn or "unset"
  return copy
end

local function subjects_of(x)
  if is_engine(x) or (type(x) == "table" and is_options(x)) then return { subject(x) } end
  if type(x) ~= "table" then return { subject(x) } end
  local list = {}
  if x[1] ~= nil then
    for i, v in ipairs(x) do list[i] = subject(v) end
  else
    local names = {}
    for name in pairs(x) do names[#names + 1] = name end
    table.sort(names)
    for i, name in ipairs(names) do list[i] = subject(x[name], name) end
  end
  return list
end

-- capacity(options_or_engine) -> pool_size + max_overflow as the core counts
-- it (an engine's is its stats().capacity), math.huge when unbounded.
function policy.capacity(x)
  return core.capacity(subject(x))
end

-- The rules of a policy given by name or as a table.
function policy.resolve(p)
  if type(p) == "string" then
    local rules = policy.policies[p]
    if not rules then
      local names = {}
      for name in pairs(policy.policies) do names[#names + 1] = name end
      table.sort(names)
      error(("dbpool: unknown policy '%s' (known: %s)"):format(p, table.concat(names, ", ")), 0)
    end
    return rules, p
  end
  if type(p) ~= "table" then
    error("dbpool: a policy is a name or a table of rules, got " .. type(p), 0)
  end
  if p.option ~= nil or p.capacity ~= nil or p.total_capacity ~= nil then
    error("dbpool: a policy is a list of rules, got a single rule: write { { ... } }", 0)
  end
  for k in pairs(p) do
    local is_index = type(k) == "number" and k == math.floor(k)
    if k ~= "name" and not is_index then
      error(("dbpool: unknown key '%s' in a policy (a list of rules, and an optional name)")
        :format(tostring(k)), 0)
    end
  end
  return p, p.name or "custom"
end

-- check(options_or_engines, policy) -> ok, violations (every one, in rule
-- order, each a sentence naming the option, its value and the bound).
function policy.check(x, p)
  local rules = policy.resolve(p)
  local violations = core.check(subjects_of(x), rules)
  return #violations == 0, violations
end

-- nil when x satisfies the policy, else one message listing every violation
-- (for the caller to raise at its own level).
function policy.refusal(x, p)
  local _, name = policy.resolve(p)
  local ok, violations = policy.check(x, p)
  if ok then return nil end
  return ("dbpool: policy '%s' refused:\n  - %s"):format(name, table.concat(violations, "\n  - "))
end

return policy
