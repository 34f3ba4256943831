#!/usr/bin/env bash
# make bench-floor: issue 19's point 5 on its own, without the peers of
# `make bench`: engine:query("SELECT 1") on a pooled connection against the
# floor (raw libpq, PQexecParams on one connection), on Lua 5.4 (the classic
# binding) and on LuaJIT with and without the FFI path (DBPOOL_FFI=0).
# 5 rounds, every contender once per round in turn, medians; prints
# Markdown on stdout (bench/results/floor.md keeps a run).
# Usage: scripts/with-pg.sh bench/floor.sh      (after `make all`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
: "${DBPOOL_TEST_DSN:?run under scripts/with-pg.sh}"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
n=${BENCH_N:-20000}
rounds=${BENCH_ROUNDS:-5}

dbpool_us() {   # LUA CPATH-BUILD [ENV=VALUE]: one run of engine:query, microseconds per call
  local lua=$1 build=$2; shift 2
  env LUA_CPATH="$root/build/$build/?.so;;" "$@" "$lua" "$root/bench/dbpool_run.lua" query "$n" |
    awk -v n="$n" '{ printf "%.3f", $1 / n * 1e6 }'
}
raw_us() { RUNS=1 "$root/bench/peers/run.sh" raw_libpq select1 "$n" | awk '{ printf "%.3f", $3 }'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- machine: $(uname -sr), $(nproc) cores; PostgreSQL $("$DBPOOL_PG_BIN/postgres" -V | awk '{print $3}') on loopback"
echo "- dbpool: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'); $n calls per run, medians of $rounds rounds"
declare -A runs
for round in $(seq "$rounds"); do
  echo "bench-floor: round $round" >&2
  runs[raw]="${runs[raw]:-} $(raw_us)"
  runs[lua54]="${runs[lua54]:-} $(dbpool_us lua5.4 5.4)"
  runs[jit_ffi]="${runs[jit_ffi]:-} $(dbpool_us luajit jit)"
  runs[jit_classic]="${runs[jit_classic]:-} $(dbpool_us luajit jit DBPOOL_FFI=0)"
done
echo "- load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
floor=$(median <<<"${runs[raw]}")
echo "| contender | µs per call | x raw libpq | rounds |"
echo "|---|---|---|---|"
row() { printf '| %s | %.3f | %.3f |%s |\n' "$1" "$(median <<<"${runs[$2]}")" \
          "$(awk -v a="$(median <<<"${runs[$2]}")" -v b="$floor" 'BEGIN { print a / b }')" "${runs[$2]}"; }
row "raw libpq, PQexecParams on one connection (the floor)" raw
row "dbpool engine:query, Lua 5.4 (classic binding)" lua54
row "dbpool engine:query, LuaJIT, FFI path" jit_ffi
row "dbpool engine:query, LuaJIT, classic binding (DBPOOL_FFI=0)" jit_classic
