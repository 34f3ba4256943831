#!/usr/bin/env bash
# Control the standby made by standby-start.sh (replica tests stop/restart it mid-load).
# Usage: scripts/standby-ctl.sh start|stop|restart|kill9|status
#        (needs its DBPOOL_STANDBY_* env and pg-start.sh's DBPOOL_PG_* env)
set -euo pipefail

: "${DBPOOL_STANDBY_DATA:?not set; run: eval \"\$(scripts/standby-start.sh)\"}"
: "${DBPOOL_PG_TMP:?not set}" "${DBPOOL_PG_BIN:?not set}" "${DBPOOL_PG_USER:?not set}"
data=$DBPOOL_STANDBY_DATA
log=${DBPOOL_STANDBY_LOG:-$(dirname "$data")/log}

# pg_ctl must run as the cluster owner (nobody when pg-start ran as root);
# cd because the caller's cwd may be unreadable for that user.
pg_ctl() {
  if [ "$(id -un)" = "$DBPOOL_PG_USER" ]; then (cd "$DBPOOL_PG_TMP" && "$DBPOOL_PG_BIN/pg_ctl" -D "$data" "$@")
  else (cd "$DBPOOL_PG_TMP" && runuser -u "$DBPOOL_PG_USER" -- "$DBPOOL_PG_BIN/pg_ctl" -D "$data" "$@"); fi
}

# `start` returns once the standby accepts read-only connections (it has replayed
# to a consistent point); streaming resumes right after, from its slot.
case "${1:-}" in
  start)   pg_ctl -l "$log" -w -t 30 -s start ;;       # -l: keep server output out of our stdout
  stop)    pg_ctl -m fast -w -t 30 -s stop ;;
  restart) pg_ctl -l "$log" -m fast -w -t 30 -s restart ;;
  status)  pg_ctl status ;;
  kill9)
    # Simulate a crash, as pg-ctl.sh kill9 does: the postmaster leads its own
    # process group, so killing the group takes the startup/walreceiver/backends too.
    pid=$(head -n1 "$data/postmaster.pid" 2>/dev/null) || { echo "dbpool standby-ctl: server not running" >&2; exit 1; }
    if [ "$(ps -o pgid= -p "$pid" | tr -d ' ')" = "$pid" ]; then kill -9 -- "-$pid"; else kill -9 "$pid"; fi
    for _ in $(seq 100); do kill -0 -- "-$pid" 2>/dev/null || kill -0 "$pid" 2>/dev/null || { rm -f "$data/postmaster.pid"; exit 0; }; sleep 0.05; done
    echo "dbpool standby-ctl: processes of $pid still alive after SIGKILL" >&2; exit 1 ;;
  *) echo "usage: $0 start|stop|restart|kill9|status" >&2; exit 2 ;;
esac
