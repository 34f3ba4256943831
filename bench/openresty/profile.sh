#!/usr/bin/env bash
# Where an nginx worker's CPU goes per request, for each handler of
# bench_handlers.lua (issue 19's point 4): one worker, wrk -t1 -c8 for
# PROFILE_SECONDS, `perf record` of that worker meanwhile; prints, per
# handler and query, the requests served, the worker's samples per request
# in microseconds of CPU, and the top shared objects and symbols.
#
# Usage: scripts/with-pg.sh bench/openresty/profile.sh      (after `make all`)
# Environment: PROFILE_HANDLERS (default "pgmoon dbpool"), PROFILE_QUERIES
# (default "select1 rows20"), PROFILE_SECONDS (default 3), PGMOON_DIR.
# Needs perf (Debian's linux-perf) and a kernel that lets root sample.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
: "${DBPOOL_TEST_DSN:?run under scripts/with-pg.sh}"
handlers=${PROFILE_HANDLERS:-pgmoon dbpool}
queries=${PROFILE_QUERIES:-select1 rows20}
seconds=${PROFILE_SECONDS:-3}
PGMOON_DIR=$(cd "${PGMOON_DIR:-$root/../shared/third_party/pgmoon}" && pwd)
export PGMOON_DIR
scripts/install-deps.sh wrk curl linux-perf >&2
hz=2000
tmp=$(mktemp -d)
prefix=''
cleanup() { [ -z "$prefix" ] || scripts/nginx-stop.sh "$prefix"; rm -rf "$tmp"; }
trap cleanup EXIT

eval "$(DBPOOL_NGINX_WORKERS=1 scripts/nginx-start.sh bench/openresty/nginx.conf)"
prefix=$DBPOOL_NGINX_PREFIX
base=http://127.0.0.1:$DBPOOL_NGINX_PORT
worker=$(pgrep -P "$(cat "$prefix/nginx.pid")" | head -n 1)

echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- one nginx worker (pid $worker), wrk -t1 -c8 -d${seconds}s, perf record -F $hz of the worker"
for q in $queries; do
  for h in $handlers; do
    curl -s -o /dev/null "$base/$h/$q"
    wrk -t1 -c8 -d1s "$base/$h/$q" >/dev/null                     # warm: connections, traces
    perf record -F "$hz" -p "$worker" -o "$tmp/perf.data" -- sleep "$((seconds + 1))" >/dev/null 2>&1 &
    pp=$!
    sleep 0.5
    n=$(wrk -t1 -c8 -d"${seconds}s" "$base/$h/$q" | awk '/requests in/ { print $1 }')
    wait "$pp" || true
    samples=$(perf report -i "$tmp/perf.data" --stdio -n --sort dso -g none 2>/dev/null |
      awk '/^ +[0-9.]+%/ { s += $2 } END { print s + 0 }')
    echo
    echo "### $h, $q: $n requests, $(awk -v s="$samples" -v n="$n" -v hz="$hz" \
      'BEGIN { printf "%.1f", n ? s / hz / n * 1e6 : 0 }') us of worker CPU per request"
    echo
    echo '```'
    perf report -i "$tmp/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 8 || true        # head closes the pipe early
    echo '--- top symbols'
    perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,sym -g none 2>/dev/null |
      grep -E '^ +[0-9.]+%' | head -n 12 || true
    echo '```'
  done
done
