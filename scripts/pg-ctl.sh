#!/usr/bin/env bash
# Control the cluster made by pg-start.sh (recovery tests stop/restart it mid-test).
# Usage: scripts/pg-ctl.sh start|stop|restart|kill9|status   (needs its DBPOOL_PG_* env)
set -euo pipefail

: "${DBPOOL_PG_TMP:?not set; run: eval \"\$(scripts/pg-start.sh)\"}"
: "${DBPOOL_PG_BIN:?not set}" "${DBPOOL_PG_USER:?not set}"
data=${DBPOOL_PG_DATA:-$DBPOOL_PG_TMP/data}
log=${DBPOOL_PG_LOG:-$DBPOOL_PG_TMP/log}

# pg_ctl must run as the cluster owner (nobody when pg-start ran as root);
# cd because the caller's cwd may be unreadable for that user.
pg_ctl() {
  if [ "$(id -un)" = "$DBPOOL_PG_USER" ]; then (cd "$DBPOOL_PG_TMP" && "$DBPOOL_PG_BIN/pg_ctl" -D "$data" "$@")
  else (cd "$DBPOOL_PG_TMP" && runuser -u "$DBPOOL_PG_USER" -- "$DBPOOL_PG_BIN/pg_ctl" -D "$data" "$@"); fi
}

case "${1:-}" in
  start)   pg_ctl -l "$log" -w -t 30 -s start ;;       # -l: keep server output out of our stdout
  stop)    pg_ctl -m fast -w -t 30 -s stop ;;
  restart) pg_ctl -l "$log" -m fast -w -t 30 -s restart ;;
  status)  pg_ctl status ;;
  kill9)
    # Simulate a crash. pg_ctl puts the postmaster in its own session, so killing
    # its process group takes the backends down too (no orphans holding shared
    # memory that would make the next `start` fail). The stale pid file is removed
    # only once all are dead, so `start` doesn't warn about another server.
    pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null) || { echo "dbpool pg-ctl: server not running" >&2; exit 1; }
    if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then kill -9 -- "-$pid"; else kill -9 "$pid"; fi
    for _ in $(seq 100); do kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || { rm -f "$data/postmaster.pid"; exit 0; }; sleep 0.05; done
    echo "dbpool pg-ctl: processes of $pid still alive after SIGKILL" >&2; exit 1 ;;
  *) echo "usage: $0 start|stop|restart|kill9|status" >&2; exit 2 ;;
esac
