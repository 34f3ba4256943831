#!/usr/bin/env bash
# The fault soak (bench/faults.c): 8 threads doing checkout + query + return
# for 60 s on a throwaway server while backends are terminated at random,
# one is stopped for 3 s and the server restarts once.  Prints the report
# recorded in bench/results/faults.md; exits non-zero when a wait passed its
# deadline by a second or more, a slot stayed in use, or counters disagree.
# Usage: bash bench/faults.sh [SECONDS [THREADS]]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
make -s build/bench/faults
exec scripts/with-pg.sh build/bench/faults "${1:-60}" "${2:-8}"
