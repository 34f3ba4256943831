#!/usr/bin/env bash
# Run CMD with a throwaway nginx serving TEMPLATE (see scripts/nginx-start.sh),
# always stopping it afterwards.  Usually nested inside scripts/with-pg.sh, so
# the template's `env DATABASE_URL_KG;` etc. find the throwaway cluster:
#   scripts/with-pg.sh scripts/with-nginx.sh examples/openresty/nginx.conf CMD...
# Usage: scripts/with-nginx.sh TEMPLATE CMD [ARGS...]   -- exits with CMD's status.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 1 ] || { echo "usage: $0 TEMPLATE CMD [ARGS...]" >&2; exit 2; }

template=$1; shift
# Teardown on every exit path: Ctrl-C, kill, hangup and a closed pipe
# included, also one that lands while nginx-start.sh runs (its exports file
# says what to stop).  When CMD failed, the error log's tail usually says why:
# it is read before the stop deletes the prefix, and shown after it, with
# SIGPIPE ignored, so that a closed output (`... | head`) cannot kill this
# shell before the stop.
env=''
# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
  trap '' PIPE
  [ -n "$env" ] || return 0
  local prefix errlog tail_text=''
  prefix=$(dbp_env_get "$env" DBPOOL_NGINX_PREFIX)
  errlog=$(dbp_env_get "$env" DBPOOL_NGINX_ERROR_LOG)
  if [ "${dbp_status:-1}" -ne 0 ] && [ -s "$errlog" ]; then
    tail_text=$(tail -n 20 "$errlog")
  fi
  [ -z "$prefix" ] || "$dbp_here/nginx-stop.sh" "$prefix" || true
  rm -f "$env"
  if [ -n "$tail_text" ]; then
    { dbp_say "--- tail of $errlog"; echo "$tail_text" >&2; } || true
  fi
}
dbp_on_exit finish
trap 'exit 129' HUP
trap 'exit 141' PIPE
env=$(mktemp /tmp/dbpool-with-nginx.XXXXXX)
dbp_start_to "$env" "$dbp_here/nginx-start.sh" "$template"

dbp_run "$@"
