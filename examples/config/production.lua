-- Production profile: sized for peak load, and refused at startup unless it
-- satisfies dbpool's production policy.
return {
  pool_size = 10,
  max_overflow = 20,
  pool_timeout = 30,
  pool_recycle = 3600,
  pool_pre_ping = true,
  echo_pool = false,
  policy = "production",
}
