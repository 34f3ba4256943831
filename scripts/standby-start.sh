#!/usr/bin/env bash
# Make and start a streaming hot standby of the cluster made by pg-start.sh.
# Lives in $DBPOOL_PG_TMP/standby, so pg-stop.sh's rm removes it (stop it first:
# standby-stop.sh, or use with-cluster.sh which does).
# Usage: eval "$(scripts/standby-start.sh)"   (needs pg-start.sh's DBPOOL_PG_* env)
# stdout carries ONLY `export` lines; everything else goes to stderr or to files.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

: "${DBPOOL_PG_TMP:?not set; run: eval \"\$(scripts/pg-start.sh)\"}"
: "${DBPOOL_PG_PORT:?not set}" "${DBPOOL_PG_USER:?not set}" "${DBPOOL_PG_BIN:?not set}"
pg_user=$DBPOOL_PG_USER pport=$DBPOOL_PG_PORT
pdata=${DBPOOL_PG_DATA:-$DBPOOL_PG_TMP/data}
psock=${DBPOOL_PG_SOCKDIR:-$DBPOOL_PG_TMP/sock}

dir=$DBPOOL_PG_TMP/standby
data=$dir/data sock=$dir/sock log=$dir/log
# A physical slot makes the primary keep the WAL a stopped standby still needs,
# so tests can stop the replica mid-load and it still catches up on restart.
slot=dbpool_standby

# Never clobber a live standby; standby-stop.sh removes the dir.
[ ! -e "$dir" ] || { dbp_say "$dir exists; run scripts/standby-stop.sh first"; exit 1; }

primary() { dbp_psql -h "$psock" -p "$pport" -U postgres -d postgres "$@"; }
drop_slot() {   # an inactive leftover slot would pin WAL on the primary forever
  primary -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
              WHERE slot_name = '$slot' AND NOT active" >/dev/null
}
replication_allowed() {
  dbp_psql "host=127.0.0.1 port=$pport user=postgres replication=true connect_timeout=2" \
    -c 'IDENTIFY_SYSTEM' >/dev/null 2>&1
}
streaming() {   # streaming PORT: in recovery, and the walreceiver streams from the primary
  [ "$(dbp_psql -h "$sock" -p "$1" -U postgres -d postgres -c \
    "SELECT pg_is_in_recovery() AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming')" \
    2>/dev/null)" = t ]
}

# On any failure (or Ctrl-C) show the logs and leave nothing running or on disk.
ok=0 created=0
cleanup() {
  [ "$ok" = 1 ] && return
  [ "$created" = 1 ] || return 0
  dbp_show_logs "$dir/basebackup.log" "$log"
  dbp_pg_stop "$data"
  drop_slot 2>/dev/null || true
  rm -rf "$dir"
}
dbp_on_exit cleanup

# pg-start.sh's pg_hba.conf has no `replication` lines (`all` does not cover
# replication connections), so pg_basebackup and the walreceiver would be
# refused. Allow them as trusted postgres over TCP -- the same trust the
# superuser already has there -- and locally; the standby copies this file, so
# it gets the same rules. Appended only once, then applied with a reload.
hba_changed=0
for line in 'host replication postgres 127.0.0.1/32 trust' 'local replication all trust'; do
  grep -qxF "$line" "$pdata/pg_hba.conf" || { echo "$line" >>"$pdata/pg_hba.conf"; hba_changed=1; }
done
if [ "$hba_changed" = 1 ]; then
  dbp_pg_ctl "$pdata" -s reload >&2
  # Reload is asynchronous: wait until a replication connection is let in.
  dbp_wait 5 replication_allowed || true
fi
drop_slot

mkdir "$dir" "$sock"
created=1
# 755 so root and other users can reach the socket; the data dir stays 700.
chmod 755 "$dir" "$sock"
dbp_chown "$pg_user" "$dir"

# Over TCP on purpose: -R writes this connection into primary_conninfo, and the
# standby should reach the primary the way clients do. -c fast: don't wait for
# a spread checkpoint; -N: no fsync, like the primary's fsync=off.
dbp_as "$pg_user" "$dir" "$DBPOOL_PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres \
  -D "$data" -R -X stream -C -S "$slot" -c fast -N >"$dir/basebackup.log" 2>&1

# The copied postgresql.conf still names the primary's port and socket dir;
# later settings win, so appending is enough.
cat >>"$data/postgresql.conf" <<CONF
# --- dbpool standby settings ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
hot_standby = on
# Tell the primary which rows standby queries still need, so reads on the
# replica during writes on the primary are not cancelled by recovery conflicts.
hot_standby_feedback = on
CONF

dbp_on_free_port "the standby" dbp_pg_start "$data" "$log" || exit 1
port=$dbp_port

# pg_ctl -w returns once hot standby accepts reads; replication proper starts
# when the walreceiver reports streaming.
dbp_wait 30 streaming "$port" || { dbp_say "standby is not streaming from the primary"; exit 1; }

ok=1
dbp_say "hot standby of 127.0.0.1:$pport on 127.0.0.1:$port (slot $slot), dir $dir"

dbp_emit DBPOOL_STANDBY_DIR "$dir"
dbp_emit DBPOOL_STANDBY_DATA "$data"
dbp_emit DBPOOL_STANDBY_PORT "$port"
dbp_emit DBPOOL_STANDBY_SOCKDIR "$sock"
dbp_emit DBPOOL_STANDBY_LOG "$log"
dbp_emit DBPOOL_STANDBY_SLOT "$slot"
dbp_emit DBPOOL_STANDBY_DSN "postgresql://postgres@127.0.0.1:$port/postgres"
dbp_emit DBPOOL_STANDBY_APP_DSN "postgresql://app:$DBPOOL_APP_PASSWORD@127.0.0.1:$port/shop_kg"
