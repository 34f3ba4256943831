#!/usr/bin/env bash
# What metrics cost: dbpool's checkout + checkin cycle in C with metrics and
# with them compiled out (-DDBP_NO_METRICS), side by side in one run.
# Instructions per cycle by callgrind (difference of runs of 2N and N cycles,
# so start-up and the one connect cancel out); time per cycle as the median
# of 5 runs of 1,000,000 cycles, the two builds alternating.
# Usage: scripts/with-pg.sh bench/metrics.sh   (after `make all bench-bin`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/build/bench
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT

instructions() {   # BINARY N
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$1" "$2" 2>&1 >/dev/null |
    awk '/Collected/ { print $4 }'
}
per_cycle() {      # BINARY
  local a b
  a=$(instructions "$1" 10000); b=$(instructions "$1" 20000)
  echo $(( (b - a) / 10000 ))
}

with=$(per_cycle "$bin/cycle"); without=$(per_cycle "$bin/cycle_nometrics")

# The same cycle from Lua 5.4 (what an app pays), module with and without.
lua_instructions() {   # CPATH N
  LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;" LUA_CPATH="$1/?.so;;" \
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" lua5.4 "$root/bench/lua_cycle.lua" "$2" \
    2>&1 >/dev/null | awk '/Collected/ { print $4 }'
}
lua_per_cycle() {      # CPATH
  local a b
  a=$(lua_instructions "$1" 10000); b=$(lua_instructions "$1" 20000)
  echo $(( (b - a) / 10000 ))
}
lua_with=$(lua_per_cycle "$root/build/5.4"); lua_without=$(lua_per_cycle "$bin/nometrics")
for _ in 1 2 3 4 5; do
  "$bin/cycle" 1000000 >>"$out/with"
  "$bin/cycle_nometrics" 1000000 >>"$out/without"
done
median_ns() { sort -g "$1" | awk 'NR == 3 { printf "%.1f", $1 / 1000000 * 1e9 }'; }
t_with=$(median_ns "$out/with"); t_without=$(median_ns "$out/without")

echo "## metrics cost per checkout + checkin ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
echo "| build | instructions per cycle | ns per cycle (median of 5) |"
echo "|---|---|---|"
echo "| metrics on | $with | $t_with |"
echo "| -DDBP_NO_METRICS | $without | $t_without |"
awk -v a="$with" -v b="$without" -v ta="$t_with" -v tb="$t_without" 'BEGIN {
  printf "| cost | %d (%.1f%%) | %.1f (%.1f%%) |\n", a - b, (a - b) * 100 / b, ta - tb, (ta - tb) * 100 / tb }'
echo
echo "| from Lua 5.4 | instructions per cycle |"
echo "|---|---|"
echo "| metrics on | $lua_with |"
echo "| -DDBP_NO_METRICS | $lua_without |"
awk -v a="$lua_with" -v b="$lua_without" 'BEGIN { printf "| cost | %d (%.1f%%) |\n", a - b, (a - b) * 100 / b }'
