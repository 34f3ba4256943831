#!/usr/bin/env bash
# Control the cluster made by pg-start.sh (recovery tests stop/restart it mid-test).
# Usage: scripts/pg-ctl.sh start|stop|restart|kill9|status   (needs its DBPOOL_PG_* env)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DBPOOL_PG_TMP:?not set; run: eval \"\$(scripts/pg-start.sh)\"}"
: "${DBPOOL_PG_BIN:?not set}"
data=${DBPOOL_PG_DATA:-$DBPOOL_PG_TMP/data}
log=${DBPOOL_PG_LOG:-$DBPOOL_PG_TMP/log}

# Simulate a crash: dbp_pg_kill9 takes the backends down too (no orphans
# holding shared memory that would make the next `start` fail). The stale pid
# file is removed only once all are dead, so `start` doesn't warn about
# another server.
kill9() {
  dbp_pid_of "$data/postmaster.pid" "$data" >/dev/null || { dbp_say "server not running"; return 1; }
  dbp_pg_kill9 "$data" || return 1
  rm -f "$data/postmaster.pid"
}

# -l: keep server output out of our stdout.
case "${1:-}" in
  start)   dbp_pg_ctl "$data" -l "$log" -w -t 30 -s start ;;
  stop)    dbp_pg_ctl "$data" -m fast -w -t 30 -s stop ;;
  restart) dbp_pg_ctl "$data" -l "$log" -m fast -w -t 30 -s restart ;;
  status)  dbp_pg_ctl "$data" status ;;
  kill9)   kill9 ;;
  *) echo "usage: $0 start|stop|restart|kill9|status" >&2; exit 2 ;;
esac
