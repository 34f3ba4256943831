#!/usr/bin/env bash
# Stop and delete a PgBouncer made by pgbouncer-start.sh. Idempotent: safe to
# call twice, or when it (or the whole cluster dir) is already gone.
# Usage: scripts/pgbouncer-stop.sh [DIR]   (default: $DBPOOL_PGB_DIR)
set -euo pipefail

dir=${1:-${DBPOOL_PGB_DIR:-}}
[ -n "$dir" ] || { echo "usage: $0 [DIR] (or set DBPOOL_PGB_DIR)" >&2; exit 2; }
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/pgbouncer) ;; *) echo "dbpool pgbouncer-stop: refusing to remove $dir" >&2; exit 2 ;; esac
[ -d "$dir" ] || exit 0

# Signal only a process verified to be ours by the config path in its command
# line: the pid file may be stale and the pid reused by something else.
ours() { tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$dir/pgbouncer.ini"; }
pid=$(cat "$dir/pgbouncer.pid" 2>/dev/null || true)
if [ -n "$pid" ] && ours "$pid"; then
  # SIGTERM = immediate shutdown (SIGINT would wait for clients to finish,
  # which is pointless for a throwaway instance). Root may signal nobody's process.
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do ours "$pid" || break; sleep 0.05; done
  # Last resort; zombie entries (empty cmdline) no longer count as ours.
  if ours "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
fi
rm -rf "$dir"
