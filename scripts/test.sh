#!/usr/bin/env bash
# make test: builds, then runs every suite against one throwaway PostgreSQL
# (always stopped, also on failure).  The last line is "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
make -s ngx ctests
# The cluster: the primary, PgBouncer in transaction mode in front of it and a
# streaming hot standby (spec/pgbouncer_spec.lua, spec/replica_spec.lua).
exec scripts/with-cluster.sh bash scripts/run-suites.sh
