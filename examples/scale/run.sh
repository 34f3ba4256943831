#!/usr/bin/env bash
# The seed's 10,000-user deployment on this machine, measured (issue 23):
# what `make demo-scale` runs.  Starts a throwaway primary + hot standby +
# PgBouncer in transaction mode (scripts/with-cluster.sh, with the seed's
# PgBouncer sizes), loads examples/scale/schema.sql, starts nginx with
# DBPOOL_NGINX_WORKERS (2) workers and dbpool (examples/scale/nginx.conf + scale.lua: dbpool.budget
# checks the connection math against the live servers before nginx serves),
# then drives wrk (examples/scale/load.lua) through:
#   - each level of SCALE_LEVELS concurrent connections for SCALE_DURATION s,
#   - a burst: SCALE_BURST connections at once after an idle pause,
#   - a failover: SCALE_FAILOVER_CONNS connections while the standby is
#     stopped and started again, then the primary restarted.
# Per phase it records requests/s, latency p50/p95/p99 (the app's, over
# every answer including those that end after wrk has stopped, and wrk's),
# answers past their deadline, errors by route, socket errors, pool
# timeouts, dbpool's checkout wait p95, server connections in use
# (pg_stat_activity), PgBouncer's SHOW POOLS waits, and the CPU each
# process group used, and writes them as Markdown to SCALE_OUT.  Everything
# started is stopped afterwards, also on failure (the with-* scripts' traps).
#
# Usage: examples/scale/run.sh [--smoke]    (after `make ngx` or `make all`)
# Environment: SCALE_LEVELS ("1000 5000 10000"), SCALE_DURATION (20),
# SCALE_BURST (10000), SCALE_BURST_DURATION (10), SCALE_FAILOVER_CONNS (1000),
# SCALE_FAILOVER_DURATION (30), SCALE_OUT (bench/results/scale.md; - for
# stdout), DBPOOL_NGINX_WORKERS (2; auto = nproc).
# --smoke: 50 connections, 2 s a phase, a 12 s failover, the report on
# stdout: proves the harness starts, measures and stops.
# A level whose connections do not fit the open-file limits (wrk's ulimit -n,
# an nginx worker's) or worker_connections is skipped, and the report says so.
# SIGTERM, SIGINT or SIGHUP to this script stop the run and everything it
# started.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
say() { echo "examples/scale: $*" >&2; }

# ---- stage 1: the cluster ------------------------------------------------------
if [ "${1:-}" = "" ] || [ "${1:-}" = --smoke ]; then
  [ -f build/jit/dbpool/core.so ] || { say "no build/jit/dbpool/core.so: run \`make ngx\` first"; exit 1; }
  scripts/install-deps.sh wrk curl lua5.4 lua-cjson postgresql pgbouncer
  if [ "${1:-}" = --smoke ]; then
    export SCALE_LEVELS=${SCALE_LEVELS:-50} SCALE_DURATION=${SCALE_DURATION:-2}
    export SCALE_BURST=${SCALE_BURST:-50} SCALE_BURST_DURATION=${SCALE_BURST_DURATION:-2}
    export SCALE_FAILOVER_CONNS=${SCALE_FAILOVER_CONNS:-50} SCALE_FAILOVER_DURATION=${SCALE_FAILOVER_DURATION:-12}
    export SCALE_OUT=${SCALE_OUT:--}
  fi
  # One number for nginx's worker_processes and for dbpool.budget's
  # instances (scale.lua reads it through nginx.conf's `env`).
  workers=${DBPOOL_NGINX_WORKERS:-2}
  [ "$workers" != auto ] || workers=$(nproc)
  export DBPOOL_NGINX_WORKERS=$workers
  # The seed's PgBouncer: transaction pooling, default_pool_size 35,
  # reserve_pool_size 10.  Its clients are the pools, not the 10,000 users
  # (those are nginx's): max_client_conn covers 2 workers x 35 + a reserve.
  # SCALE_PGB_MAX_CLIENT_CONN below 80 shows dbpool.budget refusing the start.
  # The seed's primary (and so its standby, cloned from it): max_connections 200.
  export DBPOOL_PG_MAX_CONNECTIONS=200
  export DBPOOL_PGB_DEFAULT_POOL_SIZE=35 DBPOOL_PGB_RESERVE_POOL_SIZE=10
  export DBPOOL_PGB_MAX_DB_CONNECTIONS=45 DBPOOL_PGB_MAX_CLIENT_CONN=${SCALE_PGB_MAX_CLIENT_CONN:-100}
  # The run in a process group of its own, and a signal to this script sent
  # to all of it: each with-* script and run.sh --load wait for a foreground
  # child before they run their traps, so a TERM to this script alone (or to
  # with-cluster.sh, as an exec would make it) waited for the whole run.
  # wrk and the sampler die of it; the with-* traps then stop the servers.
  set -m
  scripts/with-cluster.sh "$here/run.sh" --cluster &
  child=$!
  set +m
  for sig in TERM INT HUP; do
    # shellcheck disable=SC2064  # the signal's name, now
    trap "say 'SIG$sig: stopping the run'; kill -$sig -- -$child 2>/dev/null || true" "$sig"
  done
  status=0
  while :; do   # wait returns early when a trapped signal arrives
    wait "$child" && status=0 || status=$?
    kill -0 "$child" 2>/dev/null || break
  done
  exit "$status"
fi

# ---- stage 2: the schema, then nginx ----------------------------------------------
if [ "$1" = --cluster ]; then
  # shellcheck source=scripts/lib.sh
  . scripts/lib.sh
  PGPASSWORD=$DBPOOL_APP_PASSWORD dbp_psql "$DBPOOL_APP_DSN" -f "$here/schema.sql" >/dev/null
  standby_has() {
    [ "$(dbp_psql -h "$DBPOOL_STANDBY_SOCKDIR" -p "$DBPOOL_STANDBY_PORT" -U postgres -d shop_kg \
      -c 'SELECT count(*) FROM orders' 2>/dev/null)" = 3000 ]
  }
  dbp_wait 30 standby_has || { say "the standby did not replay the schema"; exit 1; }
  exec scripts/with-nginx.sh examples/scale/nginx.conf "$here/run.sh" --load
fi

[ "$1" = --load ] || { echo "usage: $0 [--smoke]" >&2; exit 2; }

# ---- stage 3: the load ---------------------------------------------------------------
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
levels=${SCALE_LEVELS:-1000 5000 10000}
duration=${SCALE_DURATION:-20}
burst=${SCALE_BURST:-10000}
burst_duration=${SCALE_BURST_DURATION:-10}
fo_conns=${SCALE_FAILOVER_CONNS:-1000}
fo_duration=${SCALE_FAILOVER_DURATION:-30}
out=${SCALE_OUT:-bench/results/scale.md}
nworkers=$DBPOOL_NGINX_WORKERS
pool_size=35                          # scale.lua's, per worker and pool
capacity=$((nworkers * pool_size))    # the instance's, per pool
worker_connections=$(sed -n 's/^ *worker_connections \([0-9]*\);.*/\1/p' "$here/nginx.conf")
# wrk is this shell's child: its open-file limit is ours, as high as the hard
# limit allows; a level above it is skipped (check_fds), not run with errors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
base=http://127.0.0.1:$DBPOOL_NGINX_PORT
work=$(mktemp -d /tmp/dbpool-scale.XXXXXX)
sampler=''
cleanup() {
  [ -z "$sampler" ] || kill "$sampler" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
hz=$(getconf CLK_TCK)

stats() { curl -sf -m 10 "$base/scale/stats${2:-}" >"$1"; }
report() { lua5.4 "$here/report.lua" "$@"; }

# ticks PID...: utime+stime of each PID, plus cutime+cstime (its reaped
# children: backends that exited during the phase still count).
ticks() {
  local p s t=0
  for p in "$@"; do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    s=${s##*) }
    t=$((t + $(awk '{print $12 + $13 + $14 + $15}' <<<"$s")))
  done
  echo "$t"
}
postmaster() { head -n1 "$1/postmaster.pid" 2>/dev/null || true; }
children() { [ -z "$1" ] || pgrep -P "$1" | tr '\n' ' '; }
workers=$(children "$DBPOOL_NGINX_PID")
# cpu_snapshot: ticks of each group: nginx worker 1, worker 2, primary
# (postmaster + backends), standby, PgBouncer; and the machine's busy/all.
cpu_snapshot() {
  local w pm sm out=''
  for w in $workers; do out+="$(ticks "$w") "; done
  pm=$(postmaster "$DBPOOL_PG_DATA") sm=$(postmaster "$DBPOOL_STANDBY_DATA")
  # shellcheck disable=SC2046  # pid lists
  out+="$(ticks "$pm" $(children "$pm")) $(ticks "$sm" $(children "$sm")) $(ticks "$DBPOOL_PGB_PID") "
  # busy, irq + softirq (loopback TCP is mostly softirq), steal (taken by
  # the hypervisor), all: /proc/stat's first line, both cores.
  out+=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $7 + $8, $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  echo "$out"
}

# all_ticks: "pid comm ticks" of every process (utime + stime + reaped
# children's), to say who used what the groups above do not cover.
all_ticks() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk '{
    l = $0; o = index(l, "("); c = 0
    for (i = length(l); i > 0; i--) if (substr(l, i, 1) == ")") { c = i; break }
    if (!o || !c) next
    comm = substr(l, o + 1, c - o - 1); gsub(/ /, "_", comm)
    split(substr(l, c + 2), f, " ")
    print $1, comm, f[12] + f[13] + f[14] + f[15] }' || true   # cat fails on processes gone meanwhile
}
# rest_top BEFORE AFTER SECONDS EXCLUDED_PIDS: the 3 command names that used
# most CPU outside the excluded pids during the phase, "% of one core".
rest_top() {
  awk -v hz="$hz" -v s="$3" -v ex=" $4 " '
    FNR == NR { before[$1] = $3; next }
    index(ex, " " $1 " ") == 0 { d = $3 - (($1 in before) ? before[$1] : 0); if (d > 0) use[$2] += d }
    END { for (c in use) printf "%.0f %s\n", 100 * use[c] / hz / s, c }' "$1" "$2" |
    sort -rn | head -n 3 | awk '{ printf "%s%s %s%%", (NR > 1 ? ", " : ""), $2, $1 }'
}

# One line per second while a phase runs: PgBouncer's SHOW POOLS (shop_kg/app),
# client backends on the primary and the standby, and dbpool's numbers.
sample_loop() {
  local t0=$1 file=$2 pools prim stby pool_line
  while :; do
    pools=$("$DBPOOL_PG_BIN/psql" -X --csv "$DBPOOL_PGB_ADMIN_DSN" -c 'SHOW POOLS' 2>/dev/null |
      awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
        $c["database"] == "shop_kg" && $c["user"] == "app" {
          mw = $c["maxwait"] + (c["maxwait_us"] ? $c["maxwait_us"] / 1e6 : 0)
          printf "%d\t%d\t%d\t%d\t%.3f", $c["cl_active"], $c["cl_waiting"], $c["sv_active"], $c["sv_idle"] + $c["sv_used"], mw }') ||
      pools=''
    [ -n "$pools" ] || pools=$'-\t-\t-\t-\t-'
    prim=$(dbp_psql -h "$DBPOOL_PG_SOCKDIR" -p "$DBPOOL_PG_PORT" -U postgres -d postgres -F $'\t' -c \
      "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>/dev/null) || prim=$'-\t-'
    stby=$(dbp_psql -h "$DBPOOL_STANDBY_SOCKDIR" -p "$DBPOOL_STANDBY_PORT" -U postgres -d postgres -F $'\t' -c \
      "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FROM pg_stat_activity
       WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()" 2>/dev/null) || stby=$'-\t-'
    if stats "$work/sample.json" 2>/dev/null; then pool_line=$(report sample "$work/sample.json")
    else pool_line=$'-\t-\t-\t-\t-\t-\t-\t-'; fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$(awk -v t0="$t0" '{printf "%.1f", $1 - t0}' /proc/uptime)" \
      "$pools" "$prim" "$stby" "$pool_line" >>"$file"
    sleep 1
  done
}

# The failover script, run beside the load: times in seconds from its start.
failover_actions() {
  local d=$1 t0 log=$2
  t0=$(cut -d' ' -f1 /proc/uptime)
  at() { sleep "$(awk -v t0="$t0" -v t="$1" '{d = t0 + t - $1; print (d > 0 ? d : 0)}' /proc/uptime)"; }
  stamp() { echo "$(awk -v t0="$t0" '{printf "%.1f", $1 - t0}' /proc/uptime) $*" >>"$log"; }
  at "$(awk -v d="$d" 'BEGIN {print d * 0.2}')"
  stamp "standby stop (fast)"; scripts/standby-ctl.sh stop >&2 || stamp "standby stop FAILED"; stamp "standby stopped"
  at "$(awk -v d="$d" 'BEGIN {print d * 0.45}')"
  stamp "standby start"; scripts/standby-ctl.sh start >&2 || stamp "standby start FAILED"; stamp "standby accepts reads"
  at "$(awk -v d="$d" 'BEGIN {print d * 0.65}')"
  stamp "primary restart (fast)"; scripts/pg-ctl.sh restart >&2 || stamp "primary restart FAILED"; stamp "primary back"
}

# check_fds CONNS: succeeds when CONNS connections fit every open-file limit
# on the way; otherwise says which does not (stdout) and fails.  wrk holds a
# socket a connection; an nginx worker may accept all of them (no reuseport),
# and holds its pools' sockets (2 pools of pool_size) and its logs besides.
check_fds() {
  local conns=$1 need_wrk need_ngx w lim
  need_wrk=$((conns + 32)) need_ngx=$((conns + 2 * pool_size + 64))
  lim=$(ulimit -n)
  if [ "$lim" != unlimited ] && [ "$lim" -lt "$need_wrk" ]; then
    echo "wrk may open $lim files (ulimit -n; hard limit $(ulimit -Hn)), needs $need_wrk"; return 1
  fi
  if [ "$worker_connections" -lt $((conns + 2 * pool_size)) ]; then
    echo "nginx's worker_connections is $worker_connections, a worker may need $((conns + 2 * pool_size))"; return 1
  fi
  for w in $workers; do
    lim=$(awk '/^Max open files/ {print $4}' "/proc/$w/limits" 2>/dev/null) || lim=''
    if [ -n "$lim" ] && [ "$lim" != unlimited ] && [ "$lim" -lt "$need_ngx" ]; then
      echo "nginx worker $w may open $lim files (worker_rlimit_nofile is capped by the hard limit), needs $need_ngx"
      return 1
    fi
  done
}

# phase NAME CONNS SECONDS [failover]: one measured run; its figures go to
# $work/NAME.* and a row per table to the result arrays.
declare -a rows_main=() rows_cpu=() rows_server=() rows_check=() skipped=()
phase() {
  local name=$1 conns=$2 secs=$3 action=${4:-} t0 c0 c1 wrk_out wrk_cpu why
  if ! why=$(check_fds "$conns"); then
    say "$name: SKIPPED: $why"
    skipped+=("- $name ($conns connections) skipped: $why")
    rows_main+=("| $name | $conns | skipped: open files |")
    return 0
  fi
  say "$name: $conns connections for $secs s"
  # The workers' slowest-answer keys restart here (the last phase has drained).
  stats "$work/$name.before.json" '?reset_max=1'
  t0=$(cut -d' ' -f1 /proc/uptime)
  c0=$(cpu_snapshot)
  all_ticks >"$work/$name.all0"
  : >"$work/$name.samples"
  sample_loop "$t0" "$work/$name.samples" & sampler=$!
  local fo=''
  if [ "$action" = failover ]; then
    : >"$work/$name.events"
    failover_actions "$secs" "$work/$name.events" & fo=$!
  fi
  # `times` in the subshell: wrk's own CPU (its reaped child times).
  ( wrk -t2 -c"$conns" -d"${secs}s" --timeout 30s -s "$here/load.lua" "$base" >"$work/$name.wrk" 2>&1; times ) \
    >"$work/$name.times" || true
  c1=$(cpu_snapshot)
  local t1; t1=$(cut -d' ' -f1 /proc/uptime)
  # Before the sampler stops: its reaped psql/curl/lua count as its own.
  all_ticks >"$work/$name.all1"
  local pm sm ours
  pm=$(postmaster "$DBPOOL_PG_DATA") sm=$(postmaster "$DBPOOL_STANDBY_DATA")
  # The groups' pids, and this shell (its reaped wrk is in the wrk column).
  ours="$workers $pm $(children "$pm") $sm $(children "$sm") $DBPOOL_PGB_PID $$"
  [ -z "$fo" ] || wait "$fo" || true
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=''
  # The drain: requests wrk left behind still run to their end (up to their
  # deadline); counters are compared once nothing is in use in either pool,
  # twice in a row 1.5 s apart (the other worker publishes every second).
  local drain=0 quiet=0
  while [ "$drain" -lt 30 ]; do
    sleep 1.5; drain=$((drain + 1))
    if stats "$work/$name.after.json" && report idle "$work/$name.after.json"; then
      quiet=$((quiet + 1)); [ "$quiet" -lt 2 ] || break
    else quiet=0; fi
  done
  drain_s=$(awk -v n="$drain" 'BEGIN {printf "%.1f", n * 1.5}')
  report delta "$work/$name.before.json" "$work/$name.after.json" >"$work/$name.delta"
  wrk_out=$(grep '^scale-result' "$work/$name.wrk" || true)
  if [ -z "$wrk_out" ]; then say "wrk gave no result:"; cat "$work/$name.wrk" >&2; return 1; fi
  # wrk's CPU: the second line of `times` is the children's user and system time.
  wrk_cpu=$(sed -n 2p "$work/$name.times" | awk '{ s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } print s }')
  # key=value lookups in wrk's line and the delta.
  w() { tr ' ' '\n' <<<"$wrk_out" | sed -n "s/^$1=//p"; }
  dl() { sed -n "s/^$1=//p" "$work/$name.delta"; }
  local secs_run; secs_run=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')
  # CPU per group, % of one core over the phase.
  local cpu_row
  cpu_row=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$secs_run" -v wrk="$wrk_cpu" -v nw="$(wc -w <<<"$workers")" 'BEGIN {
    n = split(a, x, " "); split(b, y, " ")
    out = ""
    for (i = 1; i <= nw + 3; i++)   # a server restarted during the phase has a new pid
      out = out (y[i] < x[i] ? " restarted |" : sprintf(" %.0f%% |", 100 * (y[i] - x[i]) / hz / s))
    out = out sprintf(" %.0f%% |", 100 * wrk / s)
    busy = y[n-3] - x[n-3]; irq = y[n-2] - x[n-2]; steal = y[n-1] - x[n-1]; all = y[n] - x[n]
    ours = 0; known = 1; for (i = 1; i <= nw + 3; i++) { if (y[i] < x[i]) known = 0; ours += y[i] - x[i] }
    # /proc/stat counts both cores: all = 2 cores x the time, so x 2 gives % of one core.
    # Time a process spends in softirq is in its own stime too, so "rest" is
    # what is left after the processes, irq/softirq outside them and steal.
    out = out sprintf(" %.0f%% | %.0f%% | %.0f%% | %s |", 100 * busy / all * 2, 100 * irq / all * 2,
      100 * steal / all * 2, known ? sprintf("%.0f%%", 100 * (busy - ours - wrk * hz) / all * 2) : "n/a")
    print out }')
  # The samples: maxima (and the mean in-use) over the phase.
  local srv
  srv=$(awk -F'\t' '
    function mx(i) { if ($i != "-" && $i + 0 > m[i]) m[i] = $i + 0 }
    { for (i = 2; i <= 17; i++) mx(i); if ($11 != "-") { n++; su += $11 + $12 } }
    END { printf "%d | %d | %d | %.3f | %d/%d | %d/%d | %d / %d | %.0f", m[2], m[3], m[4], m[6],
          m[7], m[8], m[9], m[10], m[11], m[12], n ? su / n : 0 }' "$work/$name.samples")
  local sock_errors=$(( $(w connect_errors) + $(w read_errors) + $(w write_errors) + $(w timeouts) ))
  rows_main+=("| $name | $conns | $(w rps) | $(dl app_answers) | $(( $(dl app_answers) - $(w requests) )) | $(dl app_p50_ms) | $(dl app_p95_ms) | $(dl app_p99_ms) | $(dl app_max_ms) | $(dl app_late_read) / $(dl app_late_write) | $(w p50_ms) / $(w p95_ms) / $(w p99_ms) / $(w max_ms) | $(w status) | $sock_errors | $(dl app_failed_read) / $(dl app_failed_write) | $(dl pool_timeouts) | $(dl query_timeouts) | $(dl wait_p95_ms) |")
  rows_cpu+=("| $name |$cpu_row $(rest_top "$work/$name.all0" "$work/$name.all1" "$secs_run" "$ours") |")
  rows_server+=("| $name | $srv |")
  rows_check+=("| $name | $(dl app_ok_read) / $(dl app_ok_write) | $(dl app_failed) | $(dl app_failed_read) / $(dl app_failed_write) | $(dl statements) / $(dl statements_expected) | $(dl checkouts_primary) / $(dl checkouts_replica) | $(dl read_fallbacks) | $(dl waits) / $(dl wait_n) | $(dl in_use_after) / $(dl waiters_after) after ${drain_s} s | $(dl consistent) |")
  # The seed's checklist for the levels.
  local goal=''
  case $conns in 1000) goal=100 ;; 5000) goal=200 ;; 10000) goal=500 ;; esac
  if [ -n "$goal" ] && [ "$action" != failover ]; then
    local util p95 verdict wlo whi
    util=$(awk -F'\t' -v cap="$capacity" '$11 != "-" { u = $11 > $12 ? $11 : $12; if (u > m) m = u } END { printf "%.0f", 100 * m / cap }' "$work/$name.samples")
    # Quantiles are bucket bounds: the app's p95 lies within 12% below its
    # bound, the checkout wait's within its bucket [lo, hi].
    p95=$(dl app_p95_ms)
    verdict=$(awk -v a="$p95" -v g="$goal" 'BEGIN { if (a == "inf" || a / 10 ^ (1 / 20) >= g) print "fails"; else if (a <= g) print "holds"; else print "unclear (bucket)" }')
    wlo=$(dl wait_p95_lo_ms) whi=$(dl wait_p95_hi_ms)
    rows_goal+=("| $name | p95 ≤ $p95 ms (app) vs < $goal: $verdict | $(dl pool_timeouts) timeouts: $([ "$(dl pool_timeouts)" = 0 ] && echo holds || echo fails) | $sock_errors socket errors: $([ "$sock_errors" = 0 ] && echo holds || echo fails) | wait p95 $(dl wait_p95_ms) ms vs < 10: $(awk -v lo="$wlo" -v hi="$whi" 'BEGIN { if (hi != "inf" && hi + 0 <= 10) print "holds"; else if (lo + 0 >= 10) print "fails"; else print "unclear (bucket)" }') | peak $util% of $capacity per pool: $([ "$util" -lt 70 ] && echo holds || echo fails) |")
  fi
}
declare -a rows_goal=()

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average before: $load_before"
# Warm-up: every route answers, and the pools are pre-warmed.
for path in /item/1 /items/1 /order/1; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 10 "$base$path")
  [ "$code" = 200 ] || { say "$path answered $code"; exit 1; }
done
wrk -t2 -c50 -d2s -s "$here/load.lua" "$base" >/dev/null 2>&1 || true
sleep 2   # every worker has published its numbers before the first snapshot

for c in $levels; do phase "level-$c" "$c" "$duration"; done
sleep 3   # idle, then everyone at once
phase "burst-$burst" "$burst" "$burst_duration"
phase failover "$fo_conns" "$fo_duration" failover
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
say "load average after: $load_after"
errors=$(grep -c '\[\(error\|crit\|alert\|emerg\)\]' "$DBPOOL_NGINX_ERROR_LOG" || true)
# The most frequent of them, without time stamps, pids and request details.
error_kinds=$(grep '\[\(error\|crit\|alert\|emerg\)\]' "$DBPOOL_NGINX_ERROR_LOG" |
  sed -E 's/^[0-9/: ]+//; s/[0-9]+#[0-9]+: (\*[0-9]+ )?//; s/, client: .*//' | cut -c1-160 |
  sort | uniq -c | sort -rn | head -n 5 || true)

budget=$(curl -sf "$base/scale/stats" | lua5.4 -e 'local s = require("cjson").decode(io.read("a"))
  print(("- writes: %s\n- reads: %s\n%.1f %.1f"):format(s.budget.writes, s.budget.reads, s.deadline.read, s.deadline.write))')
deadlines=$(tail -n1 <<<"$budget") budget=$(sed '$d' <<<"$budget")
{
  echo "# Scale: the seed's 10,000-user deployment on this machine (issue 23)"
  echo
  echo "Written by \`make demo-scale\` (examples/scale/run.sh); the figures below are as measured, none edited."
  echo
  echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(uname -sr)"
  echo "- load average before: $load_before; after: $load_after"
  echo "- dbpool $(git rev-parse --short HEAD 2>/dev/null || echo '?'); nginx $(nginx -v 2>&1 | sed 's|.*/||') (worker_processes $nworkers, worker_connections $worker_connections); PostgreSQL $("$DBPOOL_PG_BIN/postgres" -V | awk '{print $3}') primary + hot standby (max_connections $DBPOOL_PG_MAX_CONNECTIONS each); PgBouncer $(/usr/sbin/pgbouncer --version | head -n1 | awk '{print $2}') transaction mode (default_pool_size $DBPOOL_PGB_DEFAULT_POOL_SIZE, reserve_pool_size $DBPOOL_PGB_RESERVE_POOL_SIZE, max_db_connections $DBPOOL_PGB_MAX_DB_CONNECTIONS, max_client_conn $DBPOOL_PGB_MAX_CLIENT_CONN); wrk $(dpkg-query -W -f='${Version}' wrk 2>/dev/null), all on loopback"
  echo "- open files: wrk $(ulimit -n) (ulimit -n), nginx workers $(for w in $workers; do awk '/^Max open files/ {printf "%s ", $4}' "/proc/$w/limits"; done)(worker_rlimit_nofile, capped by the hard limit)"
  echo "- dbpool per worker: pool_size 35, max_overflow 0 (min_idle 15 pre-warmed) through PgBouncer, the same on the standby for reads (fallback to the primary); pool_timeout 10 s, query_timeout 2 s, connect_timeout 2 s, no pre-ping; deadline per answer: reads ${deadlines%% *} s, writes ${deadlines##* } s"
  echo "- dbpool.budget before start (live max_connections, PgBouncer's SHOW CONFIG):"
  echo "$budget" | sed 's/^/  /'
  echo "- workload (examples/scale/load.lua): 70% read by id, 20% 20-row list (standby), 10% write transaction (INSERT + UPDATE, primary via PgBouncer); 5,000 items, 2,000 customers, 3,000 orders at start"
  echo "- phases: levels $levels for ${duration}s each (wrk -t2 --timeout 30s); burst $burst connections at once for ${burst_duration}s after 3 s idle; failover $fo_conns connections for ${fo_duration}s"
  [ "${#skipped[@]}" -eq 0 ] || printf '%s\n' "${skipped[@]}"
  echo "- nginx error log: $errors error lines"
  [ -z "$error_kinds" ] || sed 's/^ */  - /' <<<"$error_kinds"
  echo
  echo "## Per phase"
  echo
  echo 'App: every answer the app gave during the phase, counted by scale.lua itself, including those that ended after wrk had stopped and closed its connections ("after wrk": app answers minus the answers wrk received), once they had all ended. Its p50/p95/p99 are the upper bounds of histogram buckets 12% wide (nginx read the request to the answer: without the time in the kernel'"'"'s accept queue); max is exact; late: answers past their route'"'"'s deadline, reads / writes. wrk: the answers it received before it stopped (its p50/p95/p99/max include the accept queue); req/s and the status counts are wrk'"'"'s. Socket errors: wrk'"'"'s connect, read, write errors and timeouts. Failed: the app'"'"'s 503s by route. Pool timeouts and checkout wait p95: dbpool'"'"'s own counters and wait histogram (primary and replica pools together); the wait p95 is the range of the histogram bucket it falls in (the buckets double), clamped to pool_timeout.'
  echo
  echo "| phase | connections | req/s (wrk) | answers (app) | after wrk | p50 ms (app, ≤) | p95 ms (app, ≤) | p99 ms (app, ≤) | max ms (app) | late read / write (app) | wrk p50 / p95 / p99 / max ms | HTTP status:count (wrk) | socket errors | failed read / write | pool timeouts | query timeouts | checkout wait p95 ms |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows_main[@]}"
  echo
  echo "## Server side (maxima of 1-second samples)"
  echo
  echo "PgBouncer: SHOW POOLS for shop_kg/app (its clients are the dbpool pools, $nworkers x $pool_size; it gives them at most default_pool_size $DBPOOL_PGB_DEFAULT_POOL_SIZE server connections, $DBPOOL_PGB_MAX_DB_CONNECTIONS with the reserve). Backends: client backends in pg_stat_activity (active = not idle). dbpool in use: the instance's in-use gauges (all workers), capacity $capacity per pool."
  echo
  echo "| phase | PgBouncer cl_active | cl_waiting | sv_active | maxwait s | primary backends active/total | standby backends active/total | dbpool in use primary / replica | mean in use, both pools |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows_server[@]}"
  echo
  echo "## CPU during each phase (% of one core; the machine has 2, so 200% is all of it)"
  echo
  # Single quotes: in double quotes the backquotes would run `times`.
  # shellcheck disable=SC2016
  echo 'Per group: utime + stime of its live processes plus their reaped children'"'"'s, from /proc/PID/stat at the phase'"'"'s start and end; wrk'"'"'s from the shell builtin `times`. Machine: /proc/stat. The last column names the commands outside these groups that used most (bash: the harness'"'"'s sampler and its psql/curl). A server stopped during the failover is reaped by PID 1 (process_api), so its whole CPU shows there.'
  echo
  echo "| phase |$(for i in $(seq "$(wc -w <<<"$workers")"); do printf ' nginx worker %d |' "$i"; done) primary (postmaster + backends) | standby | PgBouncer | wrk | machine busy | of it irq + softirq | of it steal | rest: not in these processes | most of the rest, by command |"
  echo "|---|$(for _ in $workers; do printf -- '---|'; done)---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows_cpu[@]}"
  echo
  echo "## The seed's checklist (levels)"
  echo
  echo "| level | latency | timeouts | socket errors | acquisition | pool utilisation |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows_goal[@]}"
  echo
  echo "## Counters after each phase"
  echo
  echo "The app counts its answers (scale.lua, shared dict), failed ones by kind and by route; dbpool counts statements per pool. Every read answered ran one statement and every write four (BEGIN, INSERT, UPDATE, COMMIT) (checkouts also count min_idle's warm-ups, which run none). The last column says which checks ran and passed: idle after = once the requests wrk left behind had ended (polled every 1.5 s, up to 45 s) nothing was checked out or waiting; statements = : with no failed answer, statements counted equal those the answers imply; statements ≥ : with failed answers (which may have run some) only at least as many; pool timeouts ≥ timeout answers: dbpool's timeouts cover the answers of kind timeout. Nothing else is checked (not, e.g., that every request wrk sent was answered)."
  echo
  echo "| phase | answers ok read / write | failed answers by kind | failed read / write | statements counted / expected | checkouts primary / replica | read fallbacks | waits counter / wait histogram count | in use / waiters after | consistent |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${rows_check[@]}"
  echo
  echo "## Failover timeline"
  echo
  echo "Events (seconds from the phase's start):"
  echo
  sed 's/^/- /' "$work/failover.events" 2>/dev/null || echo "- (no failover run)"
  echo
  echo "Per sample (about every 1.3 s): replica and primary checkouts and read fallbacks since the previous sample, dbpool's pool timeouts since nginx started, the replica pool's breaker, client backends on the standby."
  echo
  echo "| t s | replica checkouts | primary checkouts | read fallbacks | timeouts (cumulative) | breaker | standby backends |"
  echo "|---|---|---|---|---|---|---|"
  awk -F'\t' '$11 != "-" { if (seen) printf "| %s | %d | %d | %d | %d | %s | %s |\n", $1, $15 - r, $14 - p, $16 - f, $17, $18, $10;
    r = $15; p = $14; f = $16; seen = 1 }' "$work/failover.samples" 2>/dev/null || true
} >"$work/report.md"
# "-" (and /dev/stdout) write to the inherited stdout without opening it
# again: `>/dev/stdout` would truncate a log that stdout and stderr share.
if [ "$out" = - ] || [ "$out" = /dev/stdout ]; then cat "$work/report.md"
else cp "$work/report.md" "$out"; fi
say "results in $out"
