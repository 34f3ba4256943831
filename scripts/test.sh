#!/usr/bin/env bash
# make test: builds, then runs every suite against one throwaway PostgreSQL
# (always stopped, also on failure).  The last line is "N passed, N failed".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
make -s all ctests
exec scripts/with-pg.sh bash scripts/run-suites.sh
