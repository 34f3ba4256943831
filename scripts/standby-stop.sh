#!/usr/bin/env bash
# Stop and delete a standby made by standby-start.sh, and drop its replication
# slot on the primary. Idempotent: safe to call twice, or when it (or the whole
# cluster dir) is already gone. Run it BEFORE pg-stop.sh: pg-stop only stops
# the primary, and would delete the files of a still-running standby.
# Usage: scripts/standby-stop.sh [DIR]   (default: $DBPOOL_STANDBY_DIR or $DBPOOL_PG_TMP/standby)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=${1:-${DBPOOL_STANDBY_DIR:-${DBPOOL_PG_TMP:+$DBPOOL_PG_TMP/standby}}}
[ -n "$dir" ] || { echo "usage: $0 [DIR] (or set DBPOOL_STANDBY_DIR)" >&2; exit 2; }
# Only a throwaway cluster's standby dir (pg-stop.sh deletes it): guards
# against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/standby) ;; *) dbp_say "refusing to remove $dir"; exit 2 ;; esac
[ -d "$dir" ] || exit 0

DBPOOL_PG_BIN=${DBPOOL_PG_BIN:-$(dbp_pg_newest)}
# Stopping and deleting a data dir is pg-stop.sh's job; the slot comes after,
# since the primary refuses to drop it while the standby still streams.
"$dbp_here/pg-stop.sh" "$dir"

# slot_gone SOCKDIR PORT: drops the slot if it is inactive; true once no slot
# is left, or when the primary cannot be asked (then nothing is pinned anyway).
slot_gone() {
  local left
  left=$(PGCONNECT_TIMEOUT=2 dbp_psql -h "$1" -p "$2" -U postgres -d postgres -c \
    "SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots
     WHERE slot_name = 'dbpool_standby' AND NOT active;
     SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'dbpool_standby'" 2>/dev/null |
    tail -n1) || return 0
  [ "$left" = 0 ]
}

# Best effort: without the standby its slot would only pin WAL on the primary.
# The primary is found through its socket dir next to ours (its port is in the
# socket's name). The walsender may outlive the standby for a moment (slot
# still active): retry for a while.
psock=${dir%/standby}/sock
for s in "$psock"/.s.PGSQL.[0-9]*; do
  [ -S "$s" ] || continue
  dbp_wait 2 slot_gone "$psock" "${s##*.}" || true
done
