-- Every market's database for every environment, in one table for
-- dbpool.configure (and dbpool.resolve, in examples/spec).  DSNs come from
-- the environment; the defaults name local databases and hold no password.
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
      KG = { dsn = os.getenv("DATABASE_URL_KG") or "postgresql:///shop_kg" },
      US = { dsn = os.getenv("DATABASE_URL_US") or "postgresql:///shop_us" },
    },
  }
end
