#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for tests.
# Usage: eval "$(scripts/pg-start.sh)"   -- stdout carries ONLY `export` lines;
# everything else goes to stderr or to files in the temp dir.
set -euo pipefail

say() { echo "dbpool pg-start: $*" >&2; }

# Debian keeps server binaries off PATH; take the newest installed major.
bin=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n1)
[ -x "${bin:-/nonexistent}/initdb" ] || { say "no /usr/lib/postgresql/*/bin/initdb (install postgresql)"; exit 1; }

tmp=$(mktemp -d /tmp/dbpool-pg.XXXXXX)
data=$tmp/data sock=$tmp/sock log=$tmp/log
started=0 ok=0

# initdb/postgres refuse to run as root, so as root the cluster belongs to nobody.
if [ "$(id -u)" -eq 0 ]; then pg_user=nobody; else pg_user=$(id -un); fi
as_pg() {
  # cd: the caller's cwd (e.g. /root) may be unreadable for nobody.
  if [ "$(id -un)" = "$pg_user" ]; then (cd "$tmp" && "$@")
  else (cd "$tmp" && runuser -u "$pg_user" -- "$@"); fi
}

# On any failure (or Ctrl-C) show the logs and leave nothing running or on disk.
cleanup() {
  [ "$ok" = 1 ] && return
  for f in "$tmp/initdb.log" "$log"; do
    [ -s "$f" ] && { say "--- $f"; tail -n 30 "$f" >&2; }
  done
  if [ "$started" = 1 ]; then as_pg "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$sock"
# 755 so root and other users can reach the socket; the data dir stays 700 (initdb).
chmod 755 "$tmp" "$sock"
[ "$pg_user" = "$(id -un)" ] || chown -R "$pg_user:" "$tmp"

locale=C
locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$' && locale=C.UTF-8
as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale="$locale" \
  --no-sync >"$tmp/initdb.log" 2>&1

# Durability is pointless for a throwaway cluster; turning it off makes tests fast.
cat >>"$data/postgresql.conf" <<CONF
# --- dbpool test settings ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
password_encryption = 'scram-sha-256'
log_destination = 'stderr'
logging_collector = off
CONF
# Superuser is trusted (setup + admin tests); app must pass real SCRAM auth over TCP.
cat >"$data/pg_hba.conf" <<HBA
local all all trust
host all postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
HBA

port_busy() {
  if command -v ss >/dev/null; then ss -Hltn "( sport = :$1 )" | grep -q .
  else (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}

# A random free port can still be grabbed before postgres binds it: retry.
for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  port_busy "$port" && continue
  echo "port = $port" >>"$data/postgresql.conf"   # last setting wins
  started=1
  if as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 30 -s start >&2; then break; fi
  started=0
  say "start on port $port failed (attempt $attempt)"
done
[ "$started" = 1 ] || { say "could not start PostgreSQL"; exit 1; }

psql() { "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -U postgres "$@"; }
# Fed on stdin (not -c) because CREATE DATABASE cannot run inside the implicit
# transaction psql uses for a multi-statement -c string.
# The app role's password is new for every throwaway cluster (hex: safe in a
# URI); specs read it from DBPOOL_APP_PASSWORD to check it never leaks.
app_pw=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
psql -d postgres >&2 <<SQL
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
say "PostgreSQL $("$bin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port, dir $tmp"

# Single-quoted so eval copes with '?' and '&' in the socket DSN.
emit() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }
app=postgresql://app:$app_pw@127.0.0.1:$port
emit DBPOOL_PG_TMP "$tmp"
emit DBPOOL_PG_DATA "$data"
emit DBPOOL_PG_LOG "$log"
emit DBPOOL_PG_PORT "$port"
emit DBPOOL_PG_SOCKDIR "$sock"
emit DBPOOL_PG_BIN "$bin"
emit DBPOOL_PG_USER "$pg_user"
emit DBPOOL_TEST_DSN "postgresql://postgres@127.0.0.1:$port/postgres"
emit DBPOOL_TEST_SOCKET_DSN "postgresql://postgres@/postgres?host=$sock&port=$port"
emit DBPOOL_APP_PASSWORD "$app_pw"
emit DBPOOL_APP_DSN "$app/shop_kg"
emit DATABASE_URL_KG "$app/shop_kg"
emit DATABASE_URL_US "$app/shop_us"
