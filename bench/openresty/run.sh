#!/usr/bin/env bash
# Mechanism comparison: how an nginx worker should wait for PostgreSQL.
# wrk (2 threads, 32 connections) against Debian's nginx with the Lua module,
# with 1 and with 2 workers, for SELECT 1 and SELECT pg_sleep(0.002), through
# the handlers of bench_handlers.lua: blocking libpq, polled non-blocking
# libpq (ngx.sleep), dbpool offloaded with ngx.run_worker_thread, and
# dbpool's engine:query as the core does it now.  Each cell is the median
# requests/s of 3 runs; a round goes through every handler in turn, so the
# machine's noise spreads over all of them alike.
#
# Usage: scripts/with-pg.sh bench/openresty/run.sh      (after `make all`)
# Environment: BENCH_DURATION (seconds per run, default 4), BENCH_RUNS
# (default 3), BENCH_CONNECTIONS (default 32), BENCH_WORKERS (default "1 2"),
# BENCH_HANDLERS (default "blocking poll thread dbpool"), BENCH_YIELD_AFTER
# (the dbpool engine's yield_after, default 0).
# Default total: about 4 minutes.  Prints the setup and a Markdown table on
# stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

: "${DBPOOL_TEST_DSN:?run under scripts/with-pg.sh (DBPOOL_TEST_DSN is not set)}"
duration=${BENCH_DURATION:-4}
runs=${BENCH_RUNS:-3}
connections=${BENCH_CONNECTIONS:-32}
worker_counts=${BENCH_WORKERS:-1 2}
handlers=${BENCH_HANDLERS:-blocking poll thread dbpool}
queries="select1 sleep2ms"

[ -f build/jit/dbpool/core.so ] || { echo "bench/openresty: run \`make all\` first" >&2; exit 1; }
scripts/install-deps.sh wrk curl >&2

say() { echo "bench/openresty: $*" >&2; }

prefix=''
stop_nginx() { [ -z "$prefix" ] || scripts/nginx-stop.sh "$prefix"; prefix=''; }
trap stop_nginx EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wrk_rps URL SECONDS -> requests/s; a run with failed requests or socket
# errors prints its count after a slash (e.g. 812.3/err=12) so it is seen.
wrk_rps() {
  local out rps errs
  out=$(wrk -t2 -c"$connections" -d"$2"s "$1" 2>&1) || { say "wrk failed: $out"; echo 0; return; }
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx or 3xx responses:/ {n += $NF} /Socket errors:/ {
    for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { sub(",", "", $i); n += $i } } END {print n + 0}' <<<"$out")
  if [ "$errs" -gt 0 ]; then echo "$rps/err=$errs"; else echo "$rps"; fi
}

median() { tr ' ' '\n' | sed 's|/.*||' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# What was measured, for the record.
core=build/jit/dbpool/core.so
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- machine: $(uname -sr), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))"
echo "- nginx $(nginx -v 2>&1 | sed 's|.*/||'), lua-nginx-module $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua), LuaJIT $(dpkg-query -W -f='${Version}' libluajit2-5.1-2), wrk $(dpkg-query -W -f='${Version}' wrk), PostgreSQL $("$DBPOOL_PG_BIN/postgres" -V | awk '{print $3}') on loopback"
echo "- dbpool: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- csrc lua 2>/dev/null || echo ' with uncommitted changes to csrc/ or lua/'); $core built $(date -u -r "$core" '+%H:%M:%S UTC')$([ -f lua/dbpool/ngx.lua ] && echo '; lua/dbpool/ngx.lua present (OpenResty path)')"
echo "- wrk -t2 -c$connections -d${duration}s, medians of $runs runs, handlers in turn within each round"
echo

declare -A results
for workers in $worker_counts; do
  exports=$(DBPOOL_NGINX_WORKERS=$workers scripts/nginx-start.sh bench/openresty/nginx.conf)
  eval "$exports"
  prefix=$DBPOOL_NGINX_PREFIX
  base=http://127.0.0.1:$DBPOOL_NGINX_PORT
  for q in $queries; do
    # Warm-up: connections opened in every worker, LuaJIT traces compiled.
    for h in $handlers; do
      code=$(curl -s -o /dev/null -w '%{http_code}' "$base/$h/$q")
      [ "$code" = 200 ] || { say "$h/$q answered $code"; tail -n 5 "$DBPOOL_NGINX_ERROR_LOG" >&2; exit 1; }
      wrk_rps "$base/$h/$q" 1 >/dev/null
    done
    for run in $(seq "$runs"); do
      for h in $handlers; do
        r=$(wrk_rps "$base/$h/$q" "$duration")
        say "workers=$workers $q $h run $run: $r req/s"
        results[$workers,$q,$h]="${results[$workers,$q,$h]:-} $r"
      done
    done
  done
  if grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$DBPOOL_NGINX_ERROR_LOG"; then
    say "errors in nginx's error log (workers=$workers):"
    grep '\[\(error\|crit\|alert\|emerg\)\]' "$DBPOOL_NGINX_ERROR_LOG" | sort | uniq -c | sort -rn | head -n 5 >&2
  fi
  stop_nginx
done

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| query | handler | 1 worker req/s | 2 workers req/s | runs (1 worker) | runs (2 workers) |"
echo "|---|---|---|---|---|---|"
for q in $queries; do
  for h in $handlers; do
    row="| $q | $h |"
    for w in 1 2; do
      if [ -n "${results[$w,$q,$h]:-}" ]; then row+=" $(median <<<"${results[$w,$q,$h]}" | xargs printf '%.0f') |"
      else row+=" - |"; fi
    done
    for w in 1 2; do row+=" ${results[$w,$q,$h]:--} |"; done
    echo "$row"
  done
done
