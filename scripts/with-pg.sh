#!/usr/bin/env bash
# Run CMD against a fresh throwaway PostgreSQL, always tearing it down afterwards.
# Usage: scripts/with-pg.sh CMD [ARGS...]   -- exits with CMD's status.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

# Separate assignment so a pg-start failure aborts here (eval "$(...)" would hide it).
exports=$("$dbp_here/pg-start.sh")
eval "$exports"

# Teardown on every exit path, Ctrl-C and kill included.
# shellcheck disable=SC2317  # run by the EXIT trap
teardown() { "$dbp_here/pg-stop.sh" "$DBPOOL_PG_TMP"; }
dbp_on_exit teardown

dbp_run "$@"
