#!/usr/bin/env bash
# Run examples/openresty (nginx + dbpool, two markets, monitoring endpoints)
# and show what each route answers: what `make demo-openresty` runs.
# Against a throwaway PostgreSQL (scripts/with-pg.sh), or against
# DATABASE_URL for both markets when that is set; nginx is a throwaway too
# (scripts/with-nginx.sh).  Everything is stopped afterwards, also on failure.
# Usage: scripts/demo-openresty.sh   (from any directory)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
conf=examples/openresty/nginx.conf

# The second stage, run by with-nginx.sh: curl every route.
if [ "${1:-}" = --requests ]; then
  base=http://127.0.0.1:$DBPOOL_NGINX_PORT
  failed=0
  show() {   # show PATH EXPECTED_STATUS [MAX_LINES]
    local body status
    body=$(mktemp)
    status=$(curl -sS -m 30 -o "$body" -w '%{http_code}' "$base$1") || status=000
    echo "=== GET $1  ->  HTTP $status"
    if [ -n "${3:-}" ] && [ "$(wc -l <"$body")" -gt "$3" ]; then
      head -n "$3" "$body"; echo "... ($(wc -l <"$body") lines in all)"
    elif command -v python3 >/dev/null && [ "$status" != 000 ] && python3 -m json.tool "$body" >/dev/null 2>&1; then
      python3 -m json.tool "$body"
    else
      cat "$body"
    fi
    echo
    rm -f "$body"
    [ "$status" = "$2" ] || { echo "dbpool demo-openresty: expected HTTP $2" >&2; failed=1; }
  }
  show /api/v1/markets/KG/now 200
  show /api/v1/markets/US/now 200
  show /api/v1/markets/XX/now 404
  show /api/v1/markets/KG/ping 200
  show /api/v1/monitoring/pool-stats 200
  show /api/v1/monitoring/pool-metrics/detailed 200
  show /api/v1/monitoring/health/database 200
  show /metrics 200 30
  echo "(each answer comes from whichever worker took the request, see worker.pid; the numbers are every worker's)"
  exit "$failed"
fi

if [ ! -f build/jit/dbpool/core.so ]; then
  echo "dbpool demo-openresty: build/jit/dbpool/core.so is missing: run \`make ngx\` (or \`make demo-openresty\`)" >&2
  exit 1
fi
if ! make -s -q all 2>/dev/null; then
  echo "dbpool demo-openresty: note: build/ is older than the sources; \`make ngx\` rebuilds it" >&2
fi
# curl for the requests; nginx-start.sh installs nginx and the Lua module.
scripts/install-deps.sh curl

if [ -n "${DATABASE_URL:-}" ]; then
  # One database serves both markets, whatever DATABASE_URL_KG/US say.
  export DATABASE_URL_KG=$DATABASE_URL DATABASE_URL_US=$DATABASE_URL
  echo "dbpool demo-openresty: using DATABASE_URL" >&2
  exec scripts/with-nginx.sh "$conf" "$root/scripts/demo-openresty.sh" --requests
fi
# with-pg.sh exports DATABASE_URL_KG / DATABASE_URL_US for the throwaway server.
exec scripts/with-pg.sh scripts/with-nginx.sh "$conf" "$root/scripts/demo-openresty.sh" --requests
