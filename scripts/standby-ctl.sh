#!/usr/bin/env bash
# Control the standby made by standby-start.sh (replica tests stop/restart it
# mid-load): scripts/pg-ctl.sh, pointed at the standby's data dir and log.
# `start` returns once the standby accepts read-only connections; streaming
# resumes right after, from its slot.
# Usage: scripts/standby-ctl.sh start|stop|restart|kill9|status
#        (needs its DBPOOL_STANDBY_* env and pg-start.sh's DBPOOL_PG_* env)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DBPOOL_STANDBY_DATA:?not set; run: eval \"\$(scripts/standby-start.sh)\"}"
DBPOOL_PG_DATA=$DBPOOL_STANDBY_DATA \
DBPOOL_PG_LOG=${DBPOOL_STANDBY_LOG:-$(dirname "$DBPOOL_STANDBY_DATA")/log} \
  exec "$dbp_here/pg-ctl.sh" "$@"
