-- Test profile: small pools that fail fast, so a leak in a spec shows up as
-- a timeout instead of a hang.
return {
  pool_size = 2,
  max_overflow = 3,
  pool_timeout = 5,
  policy = "test",
}
