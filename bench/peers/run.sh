#!/usr/bin/env bash
# Peers for the dbpool comparison benchmark: run one peer in one mode 5 times
# and print the median time per operation.  Needs scripts/with-pg.sh's env
# (DBPOOL_TEST_DSN).  Installs the peer's Debian packages via
# scripts/install-deps.sh and builds the C and Java peers into
# build/bench-peers/ (git-ignored) when their sources are newer.
#
# Usage: scripts/with-pg.sh bench/peers/run.sh PEER MODE [N]
#   prints one line:  PEER MODE median_us_per_op
#
# PEER                 MODEs                          what it is
# raw_libpq            select1, select1_prepared,     one PGconn, PQexecParams SELECT 1: the floor
#                      cycle (prints 0)               (select1_prepared: PQprepare once, PQexecPrepared)
# connect_per_request  select1                        PQconnectdb + SELECT 1 + PQfinish per op
# luasql               select1, cycle (prints 0)      lua-sql-postgres, one connection ($LUA, default lua5.4)
# sqlalchemy           cycle, select1, select1_core   QueuePool over psycopg2 (Debian SQLAlchemy 1.4)
# psycopg_pool         cycle, select1, select1_ctx    psycopg 3 ConnectionPool (pure-Python psycopg)
# hikaricp             cycle, select1                 HikariCP 2.7 over pgjdbc 42.5, OpenJDK 17
#
# "cycle" = checkout + checkin, no query; "select1" = checkout + SELECT 1 (row
# fetched) + checkin, or just SELECT 1 on one connection for peers without a
# pool.  Each program warms up before its timed loop and prints the loop's
# seconds; this script takes the median of 5 runs and divides by N.
# Environment: LUA (luasql interpreter), PYTHON (default /usr/bin/python3, the
# interpreter Debian's python3-* packages are for), JAVA_OPTS.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/build/bench-peers

usage() { echo "usage: $0 raw_libpq|connect_per_request|luasql|sqlalchemy|psycopg_pool|hikaricp MODE [N]" >&2; exit 2; }
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
peer=$1 mode=$2
lua=${LUA:-lua5.4}
python=${PYTHON:-/usr/bin/python3}
jars=/usr/share/java

# Default iteration counts: roughly 0.2-2 s per run on a small, busy 2-core machine.
case $peer in
  raw_libpq|connect_per_request|luasql|sqlalchemy|psycopg_pool|hikaricp) ;;
  *) usage ;;
esac
case $peer:$mode in
  hikaricp:cycle)           def_n=3000000 ;;  # ~0.15 us per op once JIT-compiled
  *:cycle)                  def_n=200000 ;;   # no query: 2-6 us per op, 0 for no-pool peers
  connect_per_request:*)    def_n=50 ;;       # 10-30 ms per op
  hikaricp:select1)         def_n=40000 ;;
  *)                        def_n=20000 ;;    # select1*: 30-100 us per op
esac
n=${3:-$def_n}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "$0: N must be a positive integer" >&2; exit 2; }
: "${DBPOOL_TEST_DSN:?run under scripts/with-pg.sh (DBPOOL_TEST_DSN is not set)}"

deps() { "$root/scripts/install-deps.sh" "$@"; }

build_c() {
  deps gcc libpq-dev
  mkdir -p "$build"
  if [ ! -x "$build/raw_libpq" ] || [ "$here/raw_libpq.c" -nt "$build/raw_libpq" ]; then
    cc -O2 -Wall -Wextra -Werror -I"$(pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)" \
       -o "$build/raw_libpq.tmp.$$" "$here/raw_libpq.c" -lpq
    mv "$build/raw_libpq.tmp.$$" "$build/raw_libpq"
  fi
}

build_java() {
  local pkgs=(libhikaricp-java libpostgresql-jdbc-java libslf4j-java)
  # Any JDK will do (OpenJDK 17 is Debian 12's default); pull one in only if javac is missing.
  command -v javac >/dev/null || pkgs+=(default-jdk-headless)
  deps "${pkgs[@]}"
  mkdir -p "$build/java"
  if [ ! -f "$build/java/HikariBench.class" ] || [ "$here/HikariBench.java" -nt "$build/java/HikariBench.class" ]; then
    javac -nowarn -cp "$jars/HikariCP.jar" -d "$build/java" "$here/HikariBench.java"
  fi
}

case $peer in
  raw_libpq)
    case $mode in select1|select1_prepared|cycle) ;; *) usage ;; esac
    build_c; cmd=("$build/raw_libpq" "$mode") ;;
  connect_per_request)
    [ "$mode" = select1 ] || { echo "$0: connect_per_request has only mode select1" >&2; exit 2; }
    build_c; cmd=("$build/raw_libpq" connect) ;;
  luasql)
    case $mode in select1|cycle) ;; *) usage ;; esac
    deps lua-sql-postgres lua-system
    [ "$lua" = lua5.4 ] && deps lua5.4
    cmd=("$lua" "$here/luasql_select.lua" "$mode") ;;
  sqlalchemy)
    case $mode in cycle|select1|select1_core) ;; *) usage ;; esac
    deps python3 python3-sqlalchemy python3-psycopg2
    cmd=("$python" "$here/sqlalchemy_pool.py" "$mode") ;;
  psycopg_pool)
    case $mode in cycle|select1|select1_ctx) ;; *) usage ;; esac
    deps python3 python3-psycopg python3-psycopg-pool
    cmd=("$python" "$here/psycopg_pool_bench.py" "$mode") ;;
  hikaricp)
    case $mode in cycle|select1) ;; *) usage ;; esac
    build_java
    read -r -a java_opts <<<"${JAVA_OPTS:-}"   # a list of flags
    cmd=(java "${java_opts[@]}" -cp "$build/java:$jars/HikariCP.jar:$jars/postgresql.jar:$jars/slf4j-api.jar:$jars/slf4j-nop.jar"
         HikariBench "$mode") ;;
esac

# RUNS (default 5): bench/run.sh asks for 1 and interleaves the contenders
# itself, so that the machine's drift spreads over all of them alike.
runs=${RUNS:-5}
times=()
for _ in $(seq "$runs"); do
  t=$("${cmd[@]}" "$n")
  [[ $t =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "$0: $peer $mode printed '$t', not seconds" >&2; exit 1; }
  times+=("$t")
done
printf "%s\n" "${times[@]}" | sort -g |
  awk -v p="$peer" -v m="$mode" -v n="$n" -v mid=$(( (runs + 1) / 2 )) \
    'NR == mid { printf "%s %s %.3f\n", p, m, $1 / n * 1e6 }'
