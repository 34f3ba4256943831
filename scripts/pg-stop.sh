#!/usr/bin/env bash
# Stop and delete a cluster made by pg-start.sh. Idempotent: safe to call twice.
# Usage: scripts/pg-stop.sh [TMPDIR]   (default: $DBPOOL_PG_TMP)
set -euo pipefail

dir=${1:-${DBPOOL_PG_TMP:-}}
[ -n "$dir" ] || { echo "usage: $0 [TMPDIR] (or set DBPOOL_PG_TMP)" >&2; exit 2; }
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*) ;; *) echo "dbpool pg-stop: refusing to remove $dir" >&2; exit 2 ;; esac
[ -d "$dir" ] || exit 0

data=$dir/data
if [ -f "$data/postmaster.pid" ]; then
  bin=${DBPOOL_PG_BIN:-$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n1)}
  owner=$(stat -c %U "$data")
  # Immediate: no checkpoint, nothing worth keeping. Failure = already stopped.
  if [ "$(id -un)" = "$owner" ]; then (cd "$dir" && "$bin/pg_ctl" -D "$data" -m immediate -w -s stop) >/dev/null 2>&1 || true
  else (cd "$dir" && runuser -u "$owner" -- "$bin/pg_ctl" -D "$data" -m immediate -w -s stop) >/dev/null 2>&1 || true; fi
  # Last resort: a postmaster that ignored the stop, verified to be ours by its data dir.
  pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$data"; then
    kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  fi
fi
rm -rf "$dir"
