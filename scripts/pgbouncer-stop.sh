#!/usr/bin/env bash
# Stop and delete a PgBouncer made by pgbouncer-start.sh. Idempotent: safe to
# call twice, or when it (or the whole cluster dir) is already gone.
# Usage: scripts/pgbouncer-stop.sh [DIR]   (default: $DBPOOL_PGB_DIR)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=${1:-${DBPOOL_PGB_DIR:-}}
[ -n "$dir" ] || { echo "usage: $0 [DIR] (or set DBPOOL_PGB_DIR)" >&2; exit 2; }
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/pgbouncer) ;; *) dbp_say "refusing to remove $dir"; exit 2 ;; esac
[ -d "$dir" ] || exit 0

# Signal only a process verified to be ours by the config path in its command
# line: the pid file may be stale and the pid reused by something else.
# SIGTERM = immediate shutdown (SIGINT would wait for clients to finish,
# which is pointless for a throwaway instance), SIGKILL the last resort
# (dbp_stop). Root may signal nobody's process.
dbp_stop "$dir/pgbouncer.pid" "$dir/pgbouncer.ini" || true
rm -rf "$dir"
