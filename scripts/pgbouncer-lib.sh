# shellcheck shell=bash
# What the PgBouncer scripts (pgbouncer-start.sh, -ctl.sh, -stop.sh) have in
# common.  Sourced after lib.sh, whose functions it uses; like lib.sh it
# defines dbp_* functions and variables only:
#   . "$(dirname "${BASH_SOURCE[0]}")/pgbouncer-lib.sh"

# Debian's pgbouncer (scripts/install-deps.sh pgbouncer).
dbp_pgb_bin=/usr/sbin/pgbouncer

# dbp_pgb_launch USER INI: start PgBouncer with the config INI as USER, from
# INI's dir; returns once it has daemonized (-d), not once it listens.
dbp_pgb_launch() { dbp_as "$1" "$(dirname "$2")" "$dbp_pgb_bin" -d -q "$2"; }

# dbp_pgb_listening LOG SKIP [PORT]: does the log LOG, after its first SKIP
# lines, say that PgBouncer listens on 127.0.0.1 (on PORT, when given)?
dbp_pgb_listening() {
  [[ $(tail -n +"$(($2 + 1))" "$1" 2>/dev/null) == *"listening on 127.0.0.1:${3:-}"* ]]
}
