#!/usr/bin/env bash
# make bench: dbpool side by side with raw libpq and the pools users would
# pick instead, in one run on one throwaway server.  Writes
# bench/results/comparison.md (figures, machine, date, commands) and
# bench/results/comparison.png (gnuplot).  Needs scripts/with-pg.sh's env and
# `make all bench-bin`; the peers install their own Debian packages.
#   time:          5 rounds of every contender in turn, median per row
#   instructions:  callgrind, difference of runs of 2N and N operations
#   syscalls:      strace -c, the same difference
#   contention:    bench/contention.c, C threads over one pool
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
results=$root/bench/results
peers=$root/bench/peers/run.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"

cpath() { [ "$1" = luajit ] && echo "$root/build/jit/?.so;;" || echo "$root/build/5.4/?.so;;"; }

# dbpool_us LUA MODE N: one timed run, microseconds per operation.
dbpool_us() {
  LUA_CPATH=$(cpath "$1") "$1" "$root/bench/dbpool_run.lua" "$2" "$3" |
    awk -v n="$3" '{ printf "%.3f", $1 / n * 1e6 }'
}
# peer_us PEER MODE N: one timed run of a peer, microseconds per operation.
peer_us() { RUNS=1 "$peers" "$@" | awk '{ printf "%.3f", $3 }'; }
c_cycle_us() { "$root/build/bench/cycle" 1000000 | awk '{ printf "%.3f", $1 }'; }

# with_n N CMD...: CMD with every argument "N" replaced by the number.
with_n() {
  local n=$1; shift
  local args=() a
  for a in "$@"; do [ "$a" = N ] && args+=("$n") || args+=("$a"); done
  "${args[@]}"
}
# callgrind_per_op N CMD...: instructions per operation (CMD's "N" argument
# takes N, then 2N).
callgrind_per_op() {
  local n=$1; shift
  local a b
  a=$(with_n "$n" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$@" 2>&1 >/dev/null | awk '/Collected/ { print $4 }')
  b=$(with_n $((n * 2)) valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$@" 2>&1 >/dev/null | awk '/Collected/ { print $4 }')
  echo $(( (b - a) / n ))
}
# Plain lua5.4, not through env(1): valgrind does not follow an exec.
LUA54=(lua5.4)

# strace_per_op NAME N CMD...: NAME syscalls (or "total") per operation.
strace_per_op() {
  local name=$1 n=$2; shift 2
  local a b
  with_n "$n" strace -f -c -o "$tmp/s1" "$@" >/dev/null 2>&1
  with_n $((n * 2)) strace -f -c -o "$tmp/s2" "$@" >/dev/null 2>&1
  a=$(awk -v k="$name" '$NF == k { print ($4 ~ /^[0-9]+$/) ? $4 : $3 }' "$tmp/s1")
  b=$(awk -v k="$name" '$NF == k { print ($4 ~ /^[0-9]+$/) ? $4 : $3 }' "$tmp/s2")
  awk -v a="${a:-0}" -v b="${b:-0}" -v n="$n" 'BEGIN { printf "%.2f", (b - a) / n }'
}

# Timing: 5 rounds, each running every contender once in turn, then the
# median per contender: drift of the shared machine hits all of them alike.
echo "bench: timing (5 rounds, medians) ..." >&2
declare -A runs
measure() {   # KEY CMD...
  local key=$1; shift
  runs[$key]="${runs[$key]:-} $("$@")"
}
for round in 1 2 3 4 5; do
  echo "bench: round $round" >&2
  measure floor peer_us raw_libpq select1 20000
  measure floor_prep peer_us raw_libpq select1_prepared 20000
  measure sel_dbpool_54 dbpool_us lua5.4 select1 20000
  measure cyc_dbpool_54 dbpool_us lua5.4 cycle 300000
  measure sel_dbpool_54_prep dbpool_us lua5.4 select1_prepared 20000
  measure q_dbpool_54 dbpool_us lua5.4 query 20000
  measure q_dbpool_54_prep dbpool_us lua5.4 query_prepared 20000
  measure q_dbpool_jit dbpool_us luajit query 20000
  measure q_dbpool_jit_prep dbpool_us luajit query_prepared 20000
  measure sel_dbpool_jit dbpool_us luajit select1 20000
  measure sel_dbpool_jit_prep dbpool_us luajit select1_prepared 20000
  measure cyc_dbpool_jit dbpool_us luajit cycle 300000
  measure sel_connect peer_us connect_per_request select1 200
  measure sel_luasql peer_us luasql select1 20000
  measure sel_sqlalchemy peer_us sqlalchemy select1 10000
  measure cyc_sqlalchemy peer_us sqlalchemy cycle 50000
  measure sel_psycopg_pool peer_us psycopg_pool select1 10000
  measure cyc_psycopg_pool peer_us psycopg_pool cycle 50000
  measure sel_hikaricp peer_us hikaricp select1 20000
  measure cyc_hikaricp peer_us hikaricp cycle 2000000
  measure c_cycle c_cycle_us
done
median_of() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A sel cyc
floor=$(median_of <<<"${runs[floor]}")
floor_prep=$(median_of <<<"${runs[floor_prep]}")
for k in dbpool_54 dbpool_54_prep dbpool_jit dbpool_jit_prep connect luasql sqlalchemy psycopg_pool hikaricp; do
  sel[$k]=$(median_of <<<"${runs[sel_$k]}")
done
declare -A q
for k in dbpool_54 dbpool_54_prep dbpool_jit dbpool_jit_prep; do
  q[$k]=$(median_of <<<"${runs[q_$k]}")
done
for k in dbpool_54 dbpool_jit sqlalchemy psycopg_pool hikaricp; do
  cyc[$k]=$(median_of <<<"${runs[cyc_$k]}")
done
c_cycle_ns=$(median_of <<<"${runs[c_cycle]}")

echo "bench: instructions (callgrind) ..." >&2
LUA_CPATH=$(cpath lua5.4); export LUA_CPATH
i_c_cycle=$(callgrind_per_op 10000 "$root/build/bench/cycle" N)
i_c_select=$(callgrind_per_op 2000 "$root/build/bench/cycle" N select1)
i_lua_cycle=$(callgrind_per_op 10000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N)
i_lua_select=$(callgrind_per_op 2000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N select1)
i_lua_query=$(callgrind_per_op 2000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N engine_query)
i_raw=$(callgrind_per_op 2000 "$root/build/bench-peers/raw_libpq" select1 N)
i_luasql=$(callgrind_per_op 2000 lua5.4 "$root/bench/peers/luasql_select.lua" select1 N)

echo "bench: syscalls (strace) ..." >&2
rt_dbpool=$(strace_per_op sendto 2000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N select1)
sys_dbpool=$(strace_per_op total 2000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N select1)
rt_query=$(strace_per_op sendto 2000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N engine_query)
sys_query=$(strace_per_op total 2000 "${LUA54[@]}" "$root/bench/lua_cycle.lua" N engine_query)
rt_raw=$(strace_per_op sendto 2000 "$root/build/bench-peers/raw_libpq" select1 N)
sys_raw=$(strace_per_op total 2000 "$root/build/bench-peers/raw_libpq" select1 N)

echo "bench: contention ..." >&2
contention=$(for p in 1 2 8; do for t in 1 2 8 32; do "$root/build/bench/contention" "$t" "$p" 1; done; done)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# sel_row LABEL MICROSECONDS: a row of the pooled SELECT 1 table.
sel_row() { echo "| $1 | $2 | $(ratio "$2" "$floor") |"; }
{
  echo "# dbpool against raw libpq and other pools"
  echo
  echo "Recorded $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -srm), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), PostgreSQL $(pg_config --version | awk '{print $2}') on loopback. Command: \`make bench\` (bench/run.sh). A shared, noisy machine: compare within this run only."
  echo
  echo "## Pooled SELECT 1 (checkout + query + checkin), µs per operation, median of 5 interleaved rounds"
  echo
  echo "| contender | µs | x raw libpq |"
  echo "|---|---|---|"
  echo "| raw libpq, PQexecParams on one connection (the floor) | $floor | 1.00 |"
  sel_row "raw libpq, prepared once (PQexecPrepared)" "$floor_prep"
  sel_row "dbpool engine:query, Lua 5.4" "${q[dbpool_54]}"
  sel_row "dbpool engine:query, LuaJIT" "${q[dbpool_jit]}"
  sel_row "dbpool engine:query, Lua 5.4, prepare_threshold = 5" "${q[dbpool_54_prep]}"
  sel_row "dbpool engine:query, LuaJIT, prepare_threshold = 5" "${q[dbpool_jit_prep]}"
  sel_row "dbpool connect + query + close, Lua 5.4" "${sel[dbpool_54]}"
  sel_row "dbpool connect + query + close, LuaJIT" "${sel[dbpool_jit]}"
  sel_row "dbpool connect + query + close, Lua 5.4, prepare_threshold = 5" "${sel[dbpool_54_prep]}"
  sel_row "dbpool connect + query + close, LuaJIT, prepare_threshold = 5" "${sel[dbpool_jit_prep]}"
  sel_row "luasql-postgres, one connection, no pool" "${sel[luasql]}"
  sel_row "SQLAlchemy QueuePool + psycopg2" "${sel[sqlalchemy]}"
  sel_row "psycopg_pool (psycopg 3, Debian's pure-Python build)" "${sel[psycopg_pool]}"
  sel_row "HikariCP 2.7.9 + pgjdbc (prepares after 5 uses)" "${sel[hikaricp]}"
  sel_row "connect per request" "${sel[connect]}"
  echo
  echo "## Checkout + checkin alone, µs per cycle, median of 5 interleaved rounds"
  echo
  echo "| pool | µs |"
  echo "|---|---|"
  echo "| dbpool, C (bench/cycle.c) | $(awk -v s="$c_cycle_ns" 'BEGIN { printf "%.3f", s }') |"
  echo "| dbpool, Lua 5.4 | ${cyc[dbpool_54]} |"
  echo "| dbpool, LuaJIT | ${cyc[dbpool_jit]} |"
  echo "| SQLAlchemy QueuePool | ${cyc[sqlalchemy]} |"
  echo "| psycopg_pool | ${cyc[psycopg_pool]} |"
  echo "| HikariCP | ${cyc[hikaricp]} |"
  echo
  echo "## Instructions per operation (callgrind)"
  echo
  echo "| operation | instructions | target |"
  echo "|---|---|---|"
  echo "| dbpool cycle, C | $i_c_cycle | 300 |"
  echo "| dbpool cycle, Lua 5.4 | $i_lua_cycle | 1,000 |"
  echo "| dbpool pooled SELECT 1, C | $i_c_select | |"
  echo "| dbpool pooled SELECT 1, Lua 5.4, engine:query | $i_lua_query | 8,000 |"
  echo "| dbpool pooled SELECT 1, Lua 5.4, connect + query + close | $i_lua_select | |"
  echo "| raw libpq SELECT 1 | $i_raw | |"
  echo "| luasql SELECT 1, Lua 5.4, no pool | $i_luasql | |"
  echo
  echo "## Round trips and syscalls per pooled SELECT 1 (strace)"
  echo
  echo "| | sendto (round trips) | syscalls |"
  echo "|---|---|---|"
  echo "| dbpool engine:query, Lua 5.4 | $rt_query | $sys_query |"
  echo "| dbpool connect + query + close, Lua 5.4 | $rt_dbpool | $sys_dbpool |"
  echo "| raw libpq | $rt_raw | $sys_raw |"
  echo
  echo "## Contention: C threads over one pool (checkout + SELECT 1 + checkin, 1 s each)"
  echo
  echo "| threads | pool_size | ops/s | p99 wait µs |"
  echo "|---|---|---|---|"
  echo "$contention" | awk '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }'
} >"$results/comparison.md"

# Chart: pooled SELECT 1 per contender, dbpool as engine:query, unprepared
# (connect-per-request left out: off scale).
cat >"$tmp/data" <<DATA
"raw libpq" $floor
"dbpool 5.4" ${q[dbpool_54]}
"dbpool JIT" ${q[dbpool_jit]}
"luasql" ${sel[luasql]}
"SQLAlchemy" ${sel[sqlalchemy]}
"psycopg_pool" ${sel[psycopg_pool]}
"HikariCP" ${sel[hikaricp]}
DATA
gnuplot <<GP
set terminal png size 800,400
set termoption noenhanced
set output "$results/comparison.png"
set title "Pooled SELECT 1 on loopback: µs per operation (median of 5, lower is better)"
set style fill solid 0.8
set boxwidth 0.6
set yrange [0:*]
set ylabel "µs"
set grid ytics
unset key
plot "$tmp/data" using 0:2:xtic(1) with boxes lc rgb "#3465a4", \
     "" using 0:2:(sprintf("%.1f", \$2)) with labels offset 0,0.7
GP
cat "$results/comparison.md"
