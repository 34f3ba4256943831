#!/usr/bin/env bash
# Stop or start, in place, the PgBouncer made by pgbouncer-start.sh: the specs
# that stop or restart "the server" do it to PgBouncer when they run through it.
# Usage: scripts/pgbouncer-ctl.sh stop|start|restart   (needs DBPOOL_PGB_DIR, DBPOOL_PG_USER)
set -euo pipefail

: "${DBPOOL_PGB_DIR:?not set; run scripts/pgbouncer-start.sh}" "${DBPOOL_PG_USER:?not set}"
dir=$DBPOOL_PGB_DIR ini=$DBPOOL_PGB_DIR/pgbouncer.ini pidfile=$DBPOOL_PGB_DIR/pgbouncer.pid
log=$DBPOOL_PGB_DIR/pgbouncer.log
say() { echo "dbpool pgbouncer-ctl: $*" >&2; }

# Ours only when its command line names our config: a stale pid may be reused.
running_pid() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$ini" || return 1
  echo "$pid"
}

stop() {
  local pid
  pid=$(running_pid) || return 0
  kill -TERM "$pid"   # immediate shutdown: every client sees its connection end
  for _ in $(seq 100); do running_pid >/dev/null || return 0; sleep 0.05; done
  say "PgBouncer $pid did not stop"; return 1
}

start() {
  running_pid >/dev/null && return 0
  local lines
  lines=$(wc -l <"$log" 2>/dev/null || echo 0)
  if [ "$(id -un)" = "$DBPOOL_PG_USER" ]; then (cd "$dir" && /usr/sbin/pgbouncer -d -q "$ini")
  else (cd "$dir" && runuser -u "$DBPOOL_PG_USER" -- /usr/sbin/pgbouncer -d -q "$ini"); fi
  # Started when this run's part of the log says it listens (same port as before).
  for _ in $(seq 100); do
    tail -n +"$((lines + 1))" "$log" 2>/dev/null | grep -qF "listening on 127.0.0.1:" && return 0
    sleep 0.05
  done
  say "PgBouncer did not come back; see $log"; return 1
}

case "${1:-}" in
  stop) stop ;;
  start) start ;;
  restart) stop && start ;;
  *) echo "usage: $0 stop|start|restart" >&2; exit 2 ;;
esac
