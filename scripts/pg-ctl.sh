#!/usr/bin/env bash
# Control the cluster made by pg-start.sh (recovery tests stop/restart it mid-test).
# Usage: scripts/pg-ctl.sh start|stop|restart|kill9|status   (needs its DBPOOL_PG_* env)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DBPOOL_PG_TMP:?not set; run: eval \"\$(scripts/pg-start.sh)\"}"
: "${DBPOOL_PG_BIN:?not set}"
data=${DBPOOL_PG_DATA:-$DBPOOL_PG_TMP/data}
log=${DBPOOL_PG_LOG:-$DBPOOL_PG_TMP/log}

# dead PID: are PID and its process group gone?
dead() { ! kill -0 -- "-$1" 2>/dev/null && ! kill -0 "$1" 2>/dev/null; }

# Simulate a crash. pg_ctl puts the postmaster in its own session, so killing
# its process group takes the backends down too (no orphans holding shared
# memory that would make the next `start` fail). The stale pid file is removed
# only once all are dead, so `start` doesn't warn about another server.
kill9() {
  local pid
  pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null) || { dbp_say "server not running"; return 1; }
  if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then kill -9 -- "-$pid"; else kill -9 "$pid"; fi
  dbp_wait 5 dead "$pid" || { dbp_say "processes of $pid still alive after SIGKILL"; return 1; }
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
