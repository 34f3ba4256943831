#!/usr/bin/env bash
# The scale harness (examples/scale/run.sh, `make demo-scale`) at tiny scale:
# 50 connections, 2 s a phase, a 12 s failover.  Proves that it starts the
# cluster, PgBouncer and nginx, measures every phase, and stops everything.
# Prints TAP for scripts/run-suites.sh.  About 45 s.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

n=0
check() {   # check NAME CMD...: one TAP line
  local name=$1; shift
  n=$((n + 1))
  if "$@"; then echo "ok $n - $name"; else echo "not ok $n - $name"; fi
}
row() { grep "^| $1 |" "$out" | head -n1; }
col() { row "$1" | awk -F'|' -v c="$2" '{gsub(/ /, "", $(c + 1)); print $(c + 1)}'; }

SCALE_OUT=$out examples/scale/run.sh --smoke 2>"$err"
rc=$?
check "the harness runs to its end (exit $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -n 20 "$err" | sed 's/^/# /'
for phase in level-50 burst-50 failover; do
  check "$phase: answers measured" test -n "$(col "$phase" 3)"
  check "$phase: the app counted answers" test "$(col "$phase" 4)" -gt 0
  check "$phase: no answer past its deadline (app, reads / writes)" test "$(col "$phase" 10)" = 0/0
done
check "level and burst: counters consistent after the drain" \
  test "$(grep -cE '^\| (level-50|burst-50) \|.*\| yes: idle after, statements[^|]*\|$' "$out")" = 2
# shellcheck disable=SC2016  # awk programs, not shell expansions
# The failover timeline: reads went to the primary while the standby was
# down, and came back to it afterwards.
check "failover: reads fell back to the primary" \
  awk -F'|' '/^\| [0-9.]+ \|/ && $5 + 0 > 0 { f = 1 } END { exit !f }' "$out"
check "failover: reads returned to the standby" \
  awk -F'|' '/^\| [0-9.]+ \|/ { if ($5 + 0 > 0) f = 1; else if (f && $3 + 0 > 0) r = 1 } END { exit !r }' "$out"
# Nothing left behind: the cluster's dir is gone and no process names it.
dir=$(sed -n 's/^dbpool pg-start: .*, dir \(.*\)$/\1/p' "$err" | head -n1)
check "the cluster's dir was named ($dir)" test -n "$dir"
gone() { [ ! -e "$dir" ] && ! pgrep -f -- "$dir" >/dev/null; }   # pgrep never lists itself
check "nothing of it still runs or stays on disk" gone
echo "1..$n"
