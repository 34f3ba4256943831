#!/usr/bin/env bash
# bench/instructions.sh [BASE_REF]: callgrind instructions per operation of
# this tree's build, side by side with BASE_REF's (default: HEAD~1), on one
# throwaway server: the C checkout + checkin, the C pooled SELECT 1, the Lua
# 5.4 cycle, connect + SELECT 1 + close, and engine:query.  Each figure is
# the difference of runs of 2N and N operations (start-up cancels out), so
# the machine's load does not change it.  Writes
# bench/results/instructions.md.  Run as `make bench-instructions`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base_ref=${1:-HEAD~1}
tmp=$(mktemp -d)
base="$tmp/base"
cleanup() { git -C "$root" worktree remove --force "$base" >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT

git -C "$root" worktree add -q --detach "$base" "$base_ref"
# The base builds without nginx's headers: the figures here do not touch them.
make -s -C "$base" build/5.4/dbpool/core.so build/bench/cycle >/dev/null
make -s -C "$root" build/5.4/dbpool/core.so build/bench/cycle >/dev/null

# instructions TREE N ARGS...: per operation, ARGS with "N" replaced.
instructions() {
  local tree=$1 n=$2; shift 2
  local a b
  a=$(run "$tree" "$n" "$@"); b=$(run "$tree" $((n * 2)) "$@")
  echo $(( (b - a) / n ))
}
run() {
  local tree=$1 n=$2; shift 2
  local args=() x
  for x in "$@"; do [ "$x" = N ] && args+=("$n") || args+=("$x"); done
  LUA_PATH="$tree/lua/?.lua;$tree/lua/?/init.lua;;" LUA_CPATH="$tree/build/5.4/?.so;;" \
    valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "${args[@]//TREE/$tree}" 2>&1 >/dev/null |
    awk '/Collected/ { print $4 }'
}

rows=(
  "C checkout + checkin|10000|TREE/build/bench/cycle N"
  "C pooled SELECT 1|2000|TREE/build/bench/cycle N select1"
  "Lua 5.4 checkout + checkin|10000|lua5.4 TREE/bench/lua_cycle.lua N"
  "Lua 5.4 connect + SELECT 1 + close|2000|lua5.4 TREE/bench/lua_cycle.lua N select1"
  "Lua 5.4 engine:query SELECT 1|2000|lua5.4 TREE/bench/lua_cycle.lua N engine_query"
)
{
  echo "# Instructions per operation, side by side"
  echo
  echo "callgrind, difference of runs of 2N and N operations; $(date -u '+%Y-%m-%d %H:%M UTC');"
  echo "this tree ($(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo ', with changes'))"
  echo "against $base_ref ($(git -C "$base" rev-parse --short HEAD)); $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| operation | $base_ref | this tree | change |"
  echo "|---|---|---|---|"
  for row in "${rows[@]}"; do
    IFS='|' read -r name n cmd <<<"$row"
    # shellcheck disable=SC2086  # cmd is a word list on purpose
    b=$(instructions "$base" "$n" $cmd)
    # shellcheck disable=SC2086
    t=$(instructions "$root" "$n" $cmd)
    echo "| $name | $b | $t | $(awk -v b="$b" -v t="$t" 'BEGIN { printf "%+.1f%%", (t - b) / b * 100 }') |"
  done
} >"$root/bench/results/instructions.md"
cat "$root/bench/results/instructions.md"
