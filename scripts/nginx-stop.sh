#!/usr/bin/env bash
# Stop and delete an nginx made by nginx-start.sh. Idempotent: safe to call
# twice, or when the prefix (or the whole cluster dir around it) is gone.
# Usage: scripts/nginx-stop.sh [PREFIX]   (default: $DBPOOL_NGINX_PREFIX)
set -euo pipefail

dir=${1:-${DBPOOL_NGINX_PREFIX:-}}
[ -n "$dir" ] || { echo "usage: $0 [PREFIX] (or set DBPOOL_NGINX_PREFIX)" >&2; exit 2; }
dir=${dir%/}
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/nginx.*|/tmp/dbpool-nginx.*) ;;
  *) echo "dbpool nginx-stop: refusing to remove $dir" >&2; exit 2 ;; esac
conf=$dir/conf/nginx.conf
# Signal only a process verified to be ours by the config path in its command
# line (the pid file may be stale and the pid reused); a zombie (PID 1 here
# may not reap) has an empty command line and no longer counts.
ours() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$conf"
}
pid=$(cat "$dir/nginx.pid" 2>/dev/null || true)
# No pid file: the prefix may have been deleted under a running nginx (e.g.
# pg-stop.sh removed the cluster dir around it first).  The master's command
# line still names its config: find it by that exact path.
if [ -z "$pid" ] || ! ours "$pid"; then
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if ours "$p" && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^nginx: master'; then pid=$p; break; fi
  done
fi
if [ -n "$pid" ] && ours "$pid"; then
  # TERM = fast shutdown: workers drop their connections at once (QUIT would
  # wait for keepalive clients, pointless for a throwaway instance).
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do ours "$pid" || break; sleep 0.05; done
fi
if [ -n "$pid" ]; then
  # Last resort, and for workers a killed master left behind: the master led
  # its own session and process group (setsid in nginx-start.sh), and the
  # workers share both.
  # Only while a live member of that group still runs our binary.
  live=$(ps -o pid=,stat=,comm= -s "$pid" 2>/dev/null | awk '$2 !~ /^Z/ && $3 == "nginx"' || true)
  if [ -n "$live" ]; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
fi
[ ! -d "$dir" ] || rm -rf "$dir"
