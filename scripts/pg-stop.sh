#!/usr/bin/env bash
# Stop and delete a cluster made by pg-start.sh. Idempotent: safe to call twice.
# Usage: scripts/pg-stop.sh [TMPDIR]   (default: $DBPOOL_PG_TMP)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=${1:-${DBPOOL_PG_TMP:-}}
[ -n "$dir" ] || { echo "usage: $0 [TMPDIR] (or set DBPOOL_PG_TMP)" >&2; exit 2; }
# Guard the rm -rf below against a bad argument or stale env.
case "$dir" in /tmp/dbpool-pg.*) ;; *) dbp_say "refusing to remove $dir"; exit 2 ;; esac
[ -d "$dir" ] || exit 0

DBPOOL_PG_BIN=${DBPOOL_PG_BIN:-$(dbp_pg_newest)}
dbp_pg_stop "$dir/data"
rm -rf "$dir"
