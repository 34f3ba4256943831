#!/usr/bin/env bash
# dbpool beside pgmoon (and other ways to wait) inside OpenResty, in one run.
# wrk (2 threads, BENCH_CONNECTIONS connections) against Debian's nginx with
# the Lua module, with 1 and with 2 workers, through the handlers of
# bench_handlers.lua: `dbpool` (engine:query), `dbpool_prepared` (the same with
# prepare_threshold = 1), `pgmoon` (pgmoon 1.17 over
# cosockets with nginx's keepalive pool, from ../shared/third_party/pgmoon),
# and the mechanism handlers of issue 8 (blocking, poll, thread).  Both pools
# keep 32 connections per worker.  Queries: SELECT 1, a 20-row result and
# pg_sleep(0.002).
#
# A round runs every handler once per query, in turn, so that the machine's
# noise spreads over all of them alike; a cell is the median of BENCH_RUNS
# rounds: requests/s, p50 and p99 latency (wrk --latency), and the nginx
# workers' CPU per request (utime + stime from /proc, in microseconds).
#
# Usage: scripts/with-pg.sh bench/openresty/run.sh      (after `make all`)
# Environment: BENCH_DURATION (seconds per run, default 4), BENCH_RUNS
# (default 3), BENCH_CONNECTIONS (default 32), BENCH_WORKERS (default "1 2"),
# BENCH_HANDLERS (default "pgmoon dbpool dbpool_prepared"), BENCH_QUERIES (default
# "select1 rows20 sleep2ms"), BENCH_YIELD_AFTER (dbpool's yield_after,
# default 0), PGMOON_DIR (default ../shared/third_party/pgmoon).
# Default total: about 3 minutes.  Prints the setup and Markdown tables on
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
handlers=${BENCH_HANDLERS:-pgmoon dbpool dbpool_prepared}
queries=${BENCH_QUERIES:-select1 rows20 sleep2ms}
PGMOON_DIR=$(cd "${PGMOON_DIR:-$root/../shared/third_party/pgmoon}" 2>/dev/null && pwd) || {
  echo "bench/openresty: pgmoon not found (set PGMOON_DIR)" >&2; exit 1; }
export PGMOON_DIR

[ -f build/jit/dbpool/core.so ] || { echo "bench/openresty: run \`make all\` first" >&2; exit 1; }
scripts/install-deps.sh wrk curl >&2

say() { echo "bench/openresty: $*" >&2; }

prefix=''
stop_nginx() { [ -z "$prefix" ] || scripts/nginx-stop.sh "$prefix"; prefix=''; }
trap stop_nginx EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# CPU ticks (utime + stime) of the children of process $1, summed: the
# nginx workers, or PostgreSQL's backends (which both pools keep open).
child_ticks() {
  local pid sum=0 stat
  for pid in $(pgrep -P "$1"); do
    stat=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    sum=$((sum + $(awk '{print $12 + $13}' <<<"$stat")))
  done
  echo "$sum"
}
hz=$(getconf CLK_TCK)
postmaster=$(head -n 1 "$DBPOOL_PG_DATA/postmaster.pid")

# wrk_run URL SECONDS -> "rps p50_ms p99_ms worker_cpu_us/req errors server_cpu_us/req"
wrk_run() {
  local out t0 t1 s0 s1 master
  master=$(cat "$prefix/nginx.pid")
  t0=$(child_ticks "$master"); s0=$(child_ticks "$postmaster")
  out=$(wrk -t2 -c"$connections" -d"$2"s --latency "$1" 2>&1) || { say "wrk failed: $out"; echo "0 0 0 0 1 0"; return; }
  t1=$(child_ticks "$master"); s1=$(child_ticks "$postmaster")
  awk -v ticks=$((t1 - t0)) -v sticks=$((s1 - s0)) -v hz="$hz" '
    function ms(v) {
      if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000; return v + 0 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /requests in/ { n = $1 } /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { errs += $NF }
    /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) { sub(",", "", $i); errs += $i } }
    END { printf "%.1f %.3f %.3f %.1f %d %.1f\n", rps, p50, p99, n ? ticks * 1e6 / hz / n : 0, errs,
          n ? sticks * 1e6 / hz / n : 0 }' <<<"$out"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

# What was measured, for the record.
core=build/jit/dbpool/core.so
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- machine: $(uname -sr), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))"
echo "- nginx $(nginx -v 2>&1 | sed 's|.*/||'), lua-nginx-module $(dpkg-query -W -f='${Version}' libnginx-mod-http-lua), LuaJIT $(dpkg-query -W -f='${Version}' libluajit2-5.1-2), wrk $(dpkg-query -W -f='${Version}' wrk), PostgreSQL $("$DBPOOL_PG_BIN/postgres" -V | awk '{print $3}') on loopback, pgmoon $(grep -o 'VERSION = "[^"]*"' "$PGMOON_DIR/pgmoon/init.lua" | cut -d'"' -f2)"
echo "- dbpool: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- csrc lua 2>/dev/null || echo ' with uncommitted changes to csrc/ or lua/'); $core built $(date -u -r "$core" '+%H:%M:%S UTC')"
echo "- wrk -t2 -c$connections -d${duration}s --latency, medians of $runs rounds, handlers in turn within each round"
echo

declare -A rps p50 p99 cpu errs scpu
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
      wrk_run "$base/$h/$q" 1 >/dev/null
    done
  done
  for run in $(seq "$runs"); do
    for q in $queries; do
      for h in $handlers; do
        read -r r a b c e sc < <(wrk_run "$base/$h/$q" "$duration")
        say "workers=$workers $q $h round $run: $r req/s, p50 $a ms, p99 $b ms, CPU/req: workers $c us, PostgreSQL $sc us; $e errors"
        k=$workers,$q,$h
        rps[$k]="${rps[$k]:-} $r"; p50[$k]="${p50[$k]:-} $a"; p99[$k]="${p99[$k]:-} $b"
        cpu[$k]="${cpu[$k]:-} $c"; scpu[$k]="${scpu[$k]:-} $sc"; errs[$k]=$(( ${errs[$k]:-0} + e ))
      done
    done
  done
  if grep -q '\[\(error\|crit\|alert\|emerg\)\]' "$DBPOOL_NGINX_ERROR_LOG"; then
    say "errors in nginx's error log (workers=$workers):"
    grep '\[\(error\|crit\|alert\|emerg\)\]' "$DBPOOL_NGINX_ERROR_LOG" | sort | uniq -c | sort -rn | head -n 5 >&2
  fi
  stop_nginx
done

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| workers | query | handler | req/s | p50 ms | p99 ms | nginx workers' CPU us/req | PostgreSQL's CPU us/req | errors | req/s of each round |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for w in $worker_counts; do
  for q in $queries; do
    for h in $handlers; do
      k=$w,$q,$h
      printf '| %s | %s | %s | %.0f | %.2f | %.2f | %.1f | %.1f | %s |%s |\n' "$w" "$q" "$h" \
        "$(median <<<"${rps[$k]}")" "$(median <<<"${p50[$k]}")" "$(median <<<"${p99[$k]}")" \
        "$(median <<<"${cpu[$k]}")" "$(median <<<"${scpu[$k]}")" "${errs[$k]}" "${rps[$k]}"
    done
  done
done
# The issue's goals read as ratios to pgmoon in the same run.
if [[ " $handlers " == *" pgmoon "* ]]; then
  echo
  echo "| workers | query | handler | req/s vs pgmoon | p99 minus pgmoon's, ms | workers' CPU/req vs pgmoon | PostgreSQL's CPU/req vs pgmoon |"
  echo "|---|---|---|---|---|---|---|"
  for w in $worker_counts; do
    for q in $queries; do
      for h in $handlers; do
        [ "$h" != pgmoon ] || continue
        d=$w,$q,$h m=$w,$q,pgmoon
        awk -v w="$w" -v q="$q" -v h="$h" -v dr="$(median <<<"${rps[$d]}")" -v mr="$(median <<<"${rps[$m]}")" \
            -v dp="$(median <<<"${p99[$d]}")" -v mp="$(median <<<"${p99[$m]}")" \
            -v dc="$(median <<<"${cpu[$d]}")" -v mc="$(median <<<"${cpu[$m]}")" \
            -v ds="$(median <<<"${scpu[$d]}")" -v ms="$(median <<<"${scpu[$m]}")" \
          'BEGIN { printf "| %s | %s | %s | %.2fx | %+.2f | %.2fx | %.2fx |\n", w, q, h, mr ? dr / mr : 0, dp - mp,
                   mc ? dc / mc : 0, ms ? ds / ms : 0 }'
      done
    done
  done
fi
