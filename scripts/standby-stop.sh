#!/usr/bin/env bash
# Stop and delete a standby made by standby-start.sh, and drop its replication
# slot on the primary. Idempotent: safe to call twice, or when it (or the whole
# cluster dir) is already gone. Run it BEFORE pg-stop.sh: pg-stop only stops
# the primary, and would delete the files of a still-running standby.
# Usage: scripts/standby-stop.sh [DIR]   (default: $DBPOOL_STANDBY_DIR or $DBPOOL_PG_TMP/standby)
set -euo pipefail

dir=${1:-${DBPOOL_STANDBY_DIR:-${DBPOOL_PG_TMP:+$DBPOOL_PG_TMP/standby}}}
[ -n "$dir" ] || { echo "usage: $0 [DIR] (or set DBPOOL_STANDBY_DIR)" >&2; exit 2; }
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/standby) ;; *) echo "dbpool standby-stop: refusing to remove $dir" >&2; exit 2 ;; esac
[ -d "$dir" ] || exit 0

data=$dir/data
bin=${DBPOOL_PG_BIN:-$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n1)}
if [ -f "$data/postmaster.pid" ]; then
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

# Best effort: without the standby its slot would only pin WAL on the primary.
# The primary is found through its socket dir next to ours (its port is in the
# socket's name); if it is down or gone, there is nothing to pin anyway.
psock=${dir%/standby}/sock
for s in "$psock"/.s.PGSQL.[0-9]*; do
  [ -S "$s" ] || continue
  # The walsender may outlive the standby for a moment (slot still active): retry.
  for _ in $(seq 20); do
    left=$(PGCONNECT_TIMEOUT=2 "$bin/psql" -X -q -At -h "$psock" -p "${s##*.}" -U postgres -d postgres -c \
      "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots
       WHERE slot_name = 'dbpool_standby' AND NOT active;
       SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dbpool_standby'" 2>/dev/null | tail -n1) || break
    [ "$left" = 0 ] && break
    sleep 0.1
  done
done
rm -rf "$dir"
