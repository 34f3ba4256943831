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
# Separate assignment so a start failure aborts here (eval "$(...)" would hide it).
exports=$("$dbp_here/nginx-start.sh" "$template")
eval "$exports"

# Teardown on every exit path, Ctrl-C, kill, hangup and a closed pipe included.
# When CMD failed, the error log's tail usually says why: it is read before
# the stop deletes the prefix, and shown after it, with SIGPIPE ignored, so
# that a closed output (`... | head`) cannot kill this shell before the stop.
# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
  trap '' PIPE
  local tail_text=''
  if [ "${dbp_status:-1}" -ne 0 ] && [ -s "$DBPOOL_NGINX_ERROR_LOG" ]; then
    tail_text=$(tail -n 20 "$DBPOOL_NGINX_ERROR_LOG")
  fi
  "$dbp_here/nginx-stop.sh" "$DBPOOL_NGINX_PREFIX"
  if [ -n "$tail_text" ]; then
    { dbp_say "--- tail of $DBPOOL_NGINX_ERROR_LOG"; echo "$tail_text" >&2; } || true
  fi
}
dbp_on_exit finish
trap 'exit 129' HUP
trap 'exit 141' PIPE

dbp_run "$@"
