#!/usr/bin/env bash
# Run CMD against a fresh throwaway PostgreSQL, always tearing it down afterwards.
# Usage: scripts/with-pg.sh CMD [ARGS...]   -- exits with CMD's status.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

# Teardown on every exit path, Ctrl-C and kill included, also one that lands
# while pg-start.sh runs: its exports file says what to stop.
env=''
# shellcheck disable=SC2317  # run by the EXIT trap
teardown() {
  [ -n "$env" ] || return 0
  local tmp
  tmp=$(dbp_env_get "$env" DBPOOL_PG_TMP)
  [ -z "$tmp" ] || "$dbp_here/pg-stop.sh" "$tmp" || true
  rm -f "$env"
}
dbp_on_exit teardown
env=$(mktemp /tmp/dbpool-with-pg.XXXXXX)
dbp_start_to "$env" "$dbp_here/pg-start.sh"

dbp_run "$@"
