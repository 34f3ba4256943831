#!/usr/bin/env bash
# Run CMD against a fresh throwaway PostgreSQL, always tearing it down afterwards.
# Usage: scripts/with-pg.sh CMD [ARGS...]   -- exits with CMD's status.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)   # works from any cwd
# Separate assignment so a pg-start failure aborts here (eval "$(...)" would hide it).
exports=$("$here/pg-start.sh")
eval "$exports"

# Teardown on every exit path; signals become exits so the EXIT trap runs.
trap '"$here/pg-stop.sh" "$DBPOOL_PG_TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

status=0
"$@" || status=$?
exit "$status"
