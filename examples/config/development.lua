-- Development profile: modest pools, pool events in the log.
return {
  pool_size = 5,
  max_overflow = 10,
  pool_timeout = 10,
  echo_pool = true,
}
