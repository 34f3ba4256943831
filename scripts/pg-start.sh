#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for tests.
# Usage: eval "$(scripts/pg-start.sh)"   -- stdout carries ONLY `export` lines;
# everything else goes to stderr or to files in the temp dir.
# DBPOOL_PG_SSL_DIR=DIR: TLS on (ssl = on), with DIR's server.crt and
# server.key (scripts/tls-certs.sh makes them); clients choose with sslmode.
# DBPOOL_PG_MAX_CONNECTIONS=N: the server's max_connections (default 300: the whole
# busted suite keeps its engines' idle connections in one process).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DBPOOL_PG_BIN=$(dbp_pg_newest)
[ -x "${DBPOOL_PG_BIN:-/nonexistent}/initdb" ] || { dbp_say "no /usr/lib/postgresql/*/bin/initdb (install postgresql)"; exit 1; }

tmp=$(mktemp -d /tmp/dbpool-pg.XXXXXX)
data=$tmp/data sock=$tmp/sock log=$tmp/log
pg_user=$(dbp_service_user)

# On any failure (or Ctrl-C) show the logs and leave nothing running or on disk.
ok=0
cleanup() {
  [ "$ok" = 1 ] && return
  dbp_show_logs "$tmp/initdb.log" "$log"
  dbp_pg_stop "$data"
  rm -rf "$tmp"
}
dbp_on_exit cleanup

mkdir "$sock"
# 755 so root and other users can reach the socket; the data dir stays 700 (initdb).
chmod 755 "$tmp" "$sock"
dbp_chown "$pg_user" "$tmp"

locale=C
locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' && locale=C.UTF-8
dbp_as "$pg_user" "$tmp" "$DBPOOL_PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
  --locale="$locale" --no-sync >"$tmp/initdb.log" 2>&1

# Durability is pointless for a throwaway cluster; turning it off makes tests fast.
cat >>"$data/postgresql.conf" <<CONF
# --- dbpool test settings ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = ${DBPOOL_PG_MAX_CONNECTIONS:-300}
password_encryption = 'scram-sha-256'
log_destination = 'stderr'
logging_collector = off
CONF
if [ -n "${DBPOOL_PG_SSL_DIR:-}" ]; then
  # Copied into the data dir: the server must own its key, and refuses a key
  # others can read.
  cp "$DBPOOL_PG_SSL_DIR/server.crt" "$DBPOOL_PG_SSL_DIR/server.key" "$data/"
  chmod 600 "$data/server.key"
  dbp_chown "$pg_user" "$data/server.crt" "$data/server.key"
  printf '%s\n' "ssl = on" "ssl_cert_file = 'server.crt'" "ssl_key_file = 'server.key'" \
    >>"$data/postgresql.conf"
fi
# Superuser is trusted (setup + admin tests); app must pass real SCRAM auth over TCP.
cat >"$data/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA

dbp_on_free_port PostgreSQL dbp_pg_start "$data" "$log" || exit 1
port=$dbp_port

# Fed on stdin (not -c) because CREATE DATABASE cannot run inside the implicit
# transaction psql uses for a multi-statement -c string.
# The app role's password is new for every throwaway cluster (hex: safe in a
# URI); specs read it from DBPOOL_APP_PASSWORD to check it never leaks.
app_pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
dbp_psql -h "$sock" -p "$port" -U postgres -d postgres >&2 <<SQL
CREATE ROLE app LOGIN PASSWORD '$app_pw';
CREATE DATABASE shop_kg OWNER app;
CREATE DATABASE shop_us OWNER app;
GRANT ALL ON SCHEMA public TO app;
\c shop_kg
GRANT ALL ON SCHEMA public TO app;
\c shop_us
GRANT ALL ON SCHEMA public TO app;
SQL

ok=1
dbp_say "PostgreSQL $("$DBPOOL_PG_BIN/postgres" -V | awk '{print $3}') on 127.0.0.1:$port, dir $tmp"

app=postgresql://app:$app_pw@127.0.0.1:$port
dbp_emit DBPOOL_PG_TMP "$tmp"
dbp_emit DBPOOL_PG_DATA "$data"
dbp_emit DBPOOL_PG_LOG "$log"
dbp_emit DBPOOL_PG_PORT "$port"
dbp_emit DBPOOL_PG_SOCKDIR "$sock"
dbp_emit DBPOOL_PG_BIN "$DBPOOL_PG_BIN"
dbp_emit DBPOOL_PG_USER "$pg_user"
dbp_emit DBPOOL_TEST_DSN "postgresql://postgres@127.0.0.1:$port/postgres"
dbp_emit DBPOOL_TEST_SOCKET_DSN "postgresql://postgres@/postgres?host=$sock&port=$port"
dbp_emit DBPOOL_APP_PASSWORD "$app_pw"
dbp_emit DBPOOL_APP_DSN "$app/shop_kg"
dbp_emit DATABASE_URL_KG "$app/shop_kg"
dbp_emit DATABASE_URL_US "$app/shop_us"
