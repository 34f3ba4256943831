#!/usr/bin/env bash
# Stop and delete an nginx made by nginx-start.sh. Idempotent: safe to call
# twice, or when the prefix (or the whole cluster dir around it) is gone.
# Usage: scripts/nginx-stop.sh [PREFIX]   (default: $DBPOOL_NGINX_PREFIX)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=${1:-${DBPOOL_NGINX_PREFIX:-}}
[ -n "$dir" ] || { echo "usage: $0 [PREFIX] (or set DBPOOL_NGINX_PREFIX)" >&2; exit 2; }
dir=${dir%/}
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*/nginx.*|/tmp/dbpool-nginx.*) ;;
  *) dbp_say "refusing to remove $dir"; exit 2 ;; esac
conf=$dir/conf/nginx.conf
# Signal only a process verified to be ours by the config path in its command
# line (dbp_ours: the pid file may be stale and the pid reused; a zombie, which
# PID 1 here may not reap, no longer counts).
# No pid file: the prefix may have been deleted under a running nginx (e.g.
# pg-stop.sh removed the cluster dir around it first).  The master's command
# line still names its config: find it by that exact path.
pid=$(head -n1 "$dir/nginx.pid" 2>/dev/null || true)
if ! dbp_ours "$pid" "$conf"; then
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if dbp_ours "$p" "$conf" && [[ $(dbp_cmdline "$p") == 'nginx: master'* ]]; then pid=$p; break; fi
  done
fi
# TERM = fast shutdown: workers drop their connections at once (QUIT would
# wait for keepalive clients, pointless for a throwaway instance).  Then, as
# the last resort and for workers a killed master left behind, KILL the
# process group that the master leads (setsid in nginx-start.sh) and the
# workers share, while a live member of it still runs nginx.
dbp_group_stop "$pid" "$conf" nginx
[ ! -d "$dir" ] || rm -rf "$dir"
