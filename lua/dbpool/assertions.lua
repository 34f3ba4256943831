--- luassert assertions for an app's own busted specs: `require "dbpool.assertions"`.
--
--   assert.is_production_ready(x)
--   assert.satisfies_policy(x, policy)        -- a policy name or table
--   assert.is_not_production_ready(x)         -- and every other negation
--
-- x: an engine, an options table, or a list or map of them, such as what
-- dbpool.resolve returns (options by market: no server needed).  A failure
-- lists every violation.
-- @module dbpool.assertions

--- Passes when x satisfies the `production` policy; `is_not_production_ready`
-- when it does not.
-- @function assert.is_production_ready
-- @param x an engine, an options table, or a list or map of them
-- @raise (a failed assertion) naming the engines and listing every violation;
-- on bad options

--- Passes when x satisfies the policy; `assert.is_not_satisfies_policy` (or
-- `assert.is_not.satisfies_policy`) when it does not.
-- @function assert.satisfies_policy
-- @param x an engine, an options table, or a list or map of them
-- @param policy a policy name or a list of rules (see dbpool.check)
-- @raise (a failed assertion) listing every violation; on an unknown policy,
-- a malformed rule or bad options

local assert = require "luassert"
local say = require "say"
local policy = require "dbpool.policy"

-- "'KG'", "'KG', 'US'" (a map or list of engines or options), else "the configuration".
local function describe_subject(x)
  if type(x) ~= "table" then return "the configuration" end
  if x.name then return "'" .. tostring(x.name) .. "'" end
  local names = {}
  for k, v in pairs(x) do
    if type(v) ~= "table" then return "the configuration" end
    names[#names + 1] = "'" .. tostring(v.name or k) .. "'"
  end
  if #names == 0 then return "the configuration" end
  table.sort(names)
  return table.concat(names, ", ")
end

local function register(name, fixed_policy)
  local positive = "assertion." .. name .. ".positive"
  local negative = "assertion." .. name .. ".negative"
  say:set(positive, "Expected %s to satisfy policy %s, but:\n%s")
  say:set(negative, "Expected %s to violate policy %s, but it satisfies it.%s")
  assert:register("assertion", name, function(_, arguments)
    local x = arguments[1]
    local p = fixed_policy or arguments[2]
    local _, policy_name = policy.resolve(p)
    local ok, violations = policy.check(x, p)
    -- Replace the arguments with what the message shows, unformatted.
    arguments[1] = describe_subject(x)
    arguments[2] = "'" .. policy_name .. "'"
    arguments[3] = ok and "" or ("  - " .. table.concat(violations, "\n  - "))
    arguments.n = 3
    arguments.nofmt = { true, true, true }
    return ok
  end, positive, negative)
end

register("production_ready", "production")
register("satisfies_policy")

return assert
