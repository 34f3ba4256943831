#!/usr/bin/env bash
# Stop and delete a standby made by standby-start.sh, and drop its replication
# slot on the primary. Idempotent: safe to call twice, or when it (or the whole
# cluster dir) is already gone. Run it BEFORE pg-stop.sh: pg-stop only stops
# the primary, and would delete the files of a still-running standby.
# Usage: scripts/standby-stop.sh [DIR]   (default: $DBPOOL_STANDBY_DIR or $DBPOOL_PG_TMP/standby)
set -euo pipefail

dir=${1:-${DBPOOL_STANDBY_DIR:-${DBPOOL_PG_TMP:+$DBPOOL_PG_TMP/standby}}}
[ -n "$dir" ] || { echo "usage: $0 [DIR] (or set DBPOOL_STANDBY_DIR)" >&2; exit 2; }
# Only a throwaway cluster's standby dir (pg-stop.sh deletes it): guards
# against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/standby) ;; *) echo "dbpool standby-stop: refusing to remove $dir" >&2; exit 2 ;; esac
[ -d "$dir" ] || exit 0

here=$(cd "$(dirname "$0")" && pwd)
bin=${DBPOOL_PG_BIN:-$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n1)}
# Stopping and deleting a data dir is pg-stop.sh's job; the slot comes after,
# since the primary refuses to drop it while the standby still streams.
"$here/pg-stop.sh" "$dir"

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
