#!/usr/bin/env bash
# Stop or start, in place, the PgBouncer made by pgbouncer-start.sh: the specs
# that stop or restart "the server" do it to PgBouncer when they run through it.
# Usage: scripts/pgbouncer-ctl.sh stop|start|restart   (needs DBPOOL_PGB_DIR, DBPOOL_PG_USER)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$dbp_here/pgbouncer-lib.sh"

: "${DBPOOL_PGB_DIR:?not set; run scripts/pgbouncer-start.sh}" "${DBPOOL_PG_USER:?not set}"
ini=$DBPOOL_PGB_DIR/pgbouncer.ini pidfile=$DBPOOL_PGB_DIR/pgbouncer.pid
log=$DBPOOL_PGB_DIR/pgbouncer.log

# SIGTERM, immediate shutdown: every client sees its connection end.  Fails
# when PgBouncer ignored it (dbp_stop then used SIGKILL, and says so).
stop() { dbp_stop "$pidfile" "$ini"; }

start() {
  dbp_pid_of "$pidfile" "$ini" >/dev/null && return 0
  local lines
  lines=$(wc -l <"$log" 2>/dev/null || echo 0)
  dbp_pgb_launch "$DBPOOL_PG_USER" "$ini"
  # Started when this run's part of the log says it listens (same port as before).
  dbp_wait 5 dbp_pgb_listening "$log" "$lines" || { dbp_say "PgBouncer did not come back; see $log"; return 1; }
}

case "${1:-}" in
  stop) stop ;;
  start) start ;;
  restart) stop && start ;;
  *) echo "usage: $0 stop|start|restart" >&2; exit 2 ;;
esac
