#!/usr/bin/env bash
# Run CMD against a fresh throwaway primary + PgBouncer (transaction pooling) +
# streaming hot standby, always tearing all three down afterwards.
# Usage: scripts/with-cluster.sh CMD [ARGS...]   -- exits with CMD's status.
# CMD sees the exports of pg-start.sh, pgbouncer-start.sh and standby-start.sh.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

# Teardown on every exit path; signals become exits so the EXIT trap runs.
# Standby and PgBouncer first: pg-stop.sh only stops the primary before it
# deletes the whole dir, which would orphan them. Each step runs even if an
# earlier one fails; each stop script is a no-op for what never started.
state=''
# shellcheck disable=SC2317  # reached through the EXIT trap only
teardown() {
  [ -n "$state" ] || return 0
  # Read pg-start's exports from the file: a signal that lands while pg-start.sh
  # runs is handled only after it has finished, and before any eval of ours.
  local tmp
  tmp=$(dbp_env_get "$state/pg.env" DBPOOL_PG_TMP)
  if [ -n "$tmp" ]; then
    "$dbp_here/standby-stop.sh" "$tmp/standby" || true
    "$dbp_here/pgbouncer-stop.sh" "$tmp/pgbouncer" || true
    "$dbp_here/pg-stop.sh" "$tmp" || true
  fi
  rm -rf "$state"
}
dbp_on_exit teardown
state=$(mktemp -d /tmp/dbpool-cluster.XXXXXX)

# Each start script's exports go to a file (dbp_start_to), so the teardown
# knows what did start.
for part in pg pgbouncer standby; do
  dbp_start_to "$state/$part.env" "$dbp_here/$part-start.sh"
done

dbp_run "$@"
