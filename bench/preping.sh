#!/usr/bin/env bash
# Round trips per checkout with pool_pre_ping: inside the bypass window (goal
# 0), outside it (1), and always-ping as SQLAlchemy does (1), next to no
# pre-ping.  Round trips are counted as the client's sendto() calls (libpq
# sends each message batch with one) by strace, as the difference between a
# run of 2N and one of N cycles, so connect and start-up cancel out; time per
# cycle is the median of 5 in-process runs.  Needs scripts/with-pg.sh's env.
# Usage: scripts/with-pg.sh bench/preping.sh [LUA]   (LUA: lua5.4 or luajit)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lua=${1:-lua5.4}
build=5.4; [ "$lua" = luajit ] && build=jit
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" LUA_CPATH="$root/build/$build/?.so;;"
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

# syscalls NAME MODE N: how many NAME syscalls N cycles make.
syscalls() {
  strace -f -qq -e trace="$1" -o "$out/trace" "$lua" "$root/bench/preping_run.lua" "$2" "$3" >/dev/null
  grep -c "^[0-9]* *$1(" "$out/trace" || true
}
per_cycle() {   # NAME MODE N
  local a b
  a=$(syscalls "$1" "$2" "$3"); b=$(syscalls "$1" "$2" $(( $3 * 2 )))
  awk -v a="$a" -v b="$b" -v n="$3" 'BEGIN { printf "%.2f", (b - a) / n }'
}
median_us() {   # MODE N: median of 5 runs, microseconds per cycle
  for _ in 1 2 3 4 5; do "$lua" "$root/bench/preping_run.lua" "$1" "$2"; done |
    sort -g | awk -v n="$2" 'NR == 3 { printf "%.2f", $1 / n * 1e6 }'
}

echo "## pre-ping round trips per checkout ($lua, $(date -u +%Y-%m-%d), $(nproc) cores, PostgreSQL on loopback)"
echo
echo "| mode | round trips per checkout | poll() per checkout | µs per checkout+checkin (median of 5) |"
echo "|---|---|---|---|"
for mode in off bypass outside always; do
  n=400; [ "$mode" = outside ] && n=50
  rt=$(per_cycle sendto "$mode" "$n")
  polls=$(per_cycle poll "$mode" "$n")
  if [ "$mode" = outside ]; then us="(sleeps 10 ms per cycle)"; else us=$(median_us "$mode" 20000); fi
  echo "| $mode | $rt | $polls | $us |"
done
