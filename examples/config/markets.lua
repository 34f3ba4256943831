-- Every market's database for every environment, in one table for
-- dbpool.configure.  DSNs come from the environment, never from the source.
local function profile(name) return dofile("examples/config/" .. name .. ".lua") end

return function(env)
  return {
    env = env,
    defaults = { pool_pre_ping = true, application_name = "shop" },
    environments = {
      development = profile("development"),
      test = profile("test"),
      production = profile("production"),
    },
    markets = {
      KG = { dsn = os.getenv("DATABASE_URL_KG") },
      US = { dsn = os.getenv("DATABASE_URL_US") },
    },
  }
end
