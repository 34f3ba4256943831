# shellcheck shell=bash
# What the scripts that start, stop and control dbpool's throwaway services
# (PostgreSQL, its standby, PgBouncer, nginx) have in common.  Sourced, not run:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Defines dbp_* functions and variables only: no shell options (each script
# keeps its own `set -euo pipefail`), nothing started, nothing printed.

# Where the scripts and the project are, whatever the caller's cwd.
dbp_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck disable=SC2034  # for the scripts that source this file
dbp_root=$(dirname "$dbp_here")
# The running script's name for its messages: "dbpool pg-start: ...".
dbp_name=$(basename "$0" .sh)

# ---- output and exit ---------------------------------------------------------

# dbp_say MSG...: a message on stderr, because stdout carries only exports.
dbp_say() { echo "dbpool $dbp_name: $*" >&2; }

# dbp_emit NAME VALUE: an `export NAME='VALUE'` line for the caller's eval,
# single-quoted so any character in VALUE (e.g. '?' and '&' in a DSN) survives.
dbp_emit() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }

# dbp_on_exit FN: run FN on every exit; INT and TERM become exits (130, 143),
# so a teardown or a failed start's cleanup also runs on Ctrl-C or kill.
# shellcheck disable=SC2064  # FN is the trap's text: expanding it now is the point
dbp_on_exit() { trap "$1" EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; }

# dbp_run CMD...: run CMD and exit with its status, kept in $dbp_status for the
# EXIT trap (a with-* teardown may say more when CMD failed).
dbp_run() { dbp_status=0; "$@" || dbp_status=$?; exit "$dbp_status"; }

# dbp_start_to FILE CMD...: run the start script CMD with its exports going to
# FILE, then source them.  A file, not eval "$(...)": a failing start aborts
# the caller (eval would hide it), and its teardown can read what did start
# (dbp_env_get) even when a signal lands while CMD runs, because bash runs the
# trap only once CMD has finished.
dbp_start_to() {
  local file=$1
  shift
  "$@" >"$file"
  # shellcheck source=/dev/null
  . "$file"
}

# dbp_env_get FILE NAME: NAME's value in FILE of dbp_emit lines (empty when
# absent), read without running the file: for teardowns.
dbp_env_get() { sed -n "s/^export $2='\(.*\)'\$/\1/p" "$1" 2>/dev/null || true; }

# dbp_show_logs FILE...: the tail of each non-empty FILE on stderr: why a start failed.
dbp_show_logs() {
  local f
  for f in "$@"; do
    if [ -s "$f" ]; then dbp_say "--- $f"; tail -n 30 "$f" >&2; fi
  done
}

# ---- the unprivileged user -----------------------------------------------------

# dbp_service_user: who the services run as: initdb, postgres and pgbouncer
# refuse root (and nginx workers shed it), so nobody when we are root, else us.
dbp_service_user() { if [ "$(id -u)" -eq 0 ]; then echo nobody; else id -un; fi; }

# dbp_as USER DIR CMD...: run CMD as USER (through runuser unless USER is us)
# from DIR, since the caller's cwd (e.g. /root) may be unreadable for USER.
dbp_as() {
  local user=$1 dir=$2
  shift 2
  if [ "$(id -un)" = "$user" ]; then (cd "$dir" && "$@")
  else (cd "$dir" && runuser -u "$user" -- "$@"); fi
}

# dbp_chown USER PATH...: give PATHs (recursively) to USER unless that is us,
# so the service running as USER can read and write its files there.
dbp_chown() {
  local user=$1
  shift
  [ "$user" = "$(id -un)" ] || chown -R "$user:" "$@"
}

# ---- ports and waiting -----------------------------------------------------------

# dbp_connects PORT: does a TCP connect to 127.0.0.1:PORT succeed?
dbp_connects() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# dbp_port_busy PORT: does something listen on PORT (ss, else a connect attempt)?
dbp_port_busy() {
  if command -v ss >/dev/null; then ss -Hltn "( sport = :$1 )" | grep -q .
  else dbp_connects "$1"; fi
}

# dbp_free_port: print a random port in 20000-59999 that nothing listens on;
# that range keeps clear of system services' ports (5432, 6432, 80).
dbp_free_port() {
  local p _
  for _ in $(seq 20); do
    p=$((20000 + RANDOM % 40000))
    dbp_port_busy "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# dbp_on_free_port WHAT CMD...: run `CMD... PORT` with a free port until it
# succeeds, up to 5 times, since a port that was free when picked can be taken
# before the service binds it; sets dbp_port.  CMD runs as a condition (errexit
# off), so it must return non-zero itself when the start failed.
dbp_on_free_port() {
  local what=$1 attempt p
  shift
  for attempt in 1 2 3 4 5; do
    p=$(dbp_free_port) || break
    # shellcheck disable=SC2034  # dbp_port is the result, read by the caller
    if "$@" "$p"; then dbp_port=$p; return 0; fi
    dbp_say "start on port $p failed (attempt $attempt)"
  done
  dbp_say "could not start $what"
  return 1
}

# dbp_wait SECONDS CMD...: poll CMD every 0.1 s until it succeeds (0) or
# SECONDS have passed (1): ready is a condition that holds, not a fixed sleep.
dbp_wait() {
  local n=$(($1 * 10))
  shift
  until "$@"; do
    n=$((n - 1))
    [ "$n" -gt 0 ] || return 1
    sleep 0.1
  done
}

# ---- processes: pid files go stale and pids get reused ---------------------------

# dbp_cmdline PID: PID's command line with spaces for NULs (empty for a zombie).
dbp_cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"; }

# dbp_ours PID PATH: is PID a live (not zombie) process whose command line
# names PATH (its config or data dir)?  Only such a process may be signalled.
dbp_ours() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }   # after the command name, which may hold spaces
  [ "${stat%% *}" != Z ] && [[ $(dbp_cmdline "$1") == *"$2"* ]]
}

# dbp_dead PID: PID has exited (no such process, or a zombie not yet reaped).
# Unlike dbp_gone, true only after an exit: a child just forked by `cmd &`
# still runs the shell's command line until it execs, which dbp_ours would
# not recognise.
dbp_dead() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}

# dbp_gone PID PATH: PID has exited, its files closed (a condition for
# dbp_wait): dead (dbp_dead), or the pid now runs another command.  Not merely
# "no longer dbp_ours": an exiting process loses its command line (its memory
# goes first) before the kernel closes its sockets, and a caller that goes on
# at that moment still finds the clients' connections open.
dbp_gone() {
  local cmd
  dbp_dead "$1" && return 0
  cmd=$(dbp_cmdline "$1") || return 0
  [ -n "$cmd" ] && [[ $cmd != *"$2"* ]]
}

# dbp_pid_of PIDFILE PATH: print the pid on PIDFILE's first line when that
# process is ours (dbp_ours PID PATH); fail otherwise.
dbp_pid_of() {
  local pid
  pid=$(head -n1 "$1" 2>/dev/null) && dbp_ours "$pid" "$2" && echo "$pid"
}

# dbp_term PID PATH: SIGTERM our process and wait up to 5 s until it is gone;
# fails when it is still there, leaving the last resort to the caller.
dbp_term() {
  kill -TERM "$1" 2>/dev/null || true
  dbp_wait 5 dbp_gone "$1" "$2"
}

# dbp_stop PIDFILE PATH: stop PIDFILE's process if it is ours (dbp_pid_of):
# SIGTERM, then SIGKILL as the last resort when it is still there 5 s later.
# A no-op when it does not run; fails (saying so) only when it took SIGKILL.
dbp_stop() {
  local pid
  pid=$(dbp_pid_of "$1" "$2") || return 0
  dbp_term "$pid" "$2" && return 0
  dbp_say "pid $pid still there 5 s after SIGTERM: SIGKILL"
  if dbp_ours "$pid" "$2"; then kill -9 "$pid" 2>/dev/null || true; fi
  return 1
}

# dbp_group_stop PID PATH COMM: stop PID, which leads a session and process
# group of its own (setsid) that its children share: SIGTERM when PID is ours
# (dbp_term); then, as the last resort and for children it left behind,
# SIGKILL that group while a live (not zombie) member still runs COMM.  A no-op
# for an empty PID.
dbp_group_stop() {
  [ -n "$1" ] || return 0
  if dbp_ours "$1" "$2"; then dbp_term "$1" "$2" || true; fi
  if ps -o stat=,comm= -s "$1" 2>/dev/null |
    awk -v comm="$3" '$1 !~ /^Z/ && $2 == comm { n++ } END { exit n == 0 }'; then
    kill -KILL -- "-$1" 2>/dev/null || true
  fi
}

# ---- PostgreSQL (needs DBPOOL_PG_BIN) ------------------------------------------

# dbp_pg_newest: the newest installed PostgreSQL's bin dir (Debian keeps the
# server binaries off PATH).
dbp_pg_newest() { printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1; }

# dbp_psql ARGS...: psql without ~/.psqlrc, quiet, unaligned tuples only
# (answers compare as plain strings), stopping at the first error.
dbp_psql() { "$DBPOOL_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# dbp_pg_ctl DATA ARGS...: pg_ctl -D DATA ARGS as the owner of DATA, the only
# user the server may run as.
dbp_pg_ctl() {
  local data=$1
  shift
  dbp_as "$(stat -c %U "$data")" "$(dirname "$data")" "$DBPOOL_PG_BIN/pg_ctl" -D "$data" "$@"
}

# dbp_pg_start DATA LOG PORT: start the cluster in DATA on PORT, logging to LOG;
# a failed start is stopped again, so that a retry finds no stale server.
dbp_pg_start() {
  echo "port = $3" >>"$1/postgresql.conf"   # the last setting wins
  dbp_pg_ctl "$1" -l "$2" -w -t 30 -s start >&2 && return 0
  dbp_pg_stop "$1"
  return 1
}

# dbp_pg_stop DATA: stop the cluster in DATA now (immediate: a throwaway has
# nothing worth a checkpoint); a no-op when it does not run.
dbp_pg_stop() {
  [ -f "$1/postmaster.pid" ] || return 0
  dbp_pg_ctl "$1" -m immediate -w -s stop >/dev/null 2>&1 || true   # fails when already stopped
  dbp_pg_kill9 "$1" || true   # last resort: a postmaster that ignored the stop
}

# dbp_pg_kill9 DATA: SIGKILL the postmaster of DATA, proven ours by its data
# dir, with its process group (pg_ctl made it the leader; its children see it
# die and exit), and wait up to 5 s until it is gone.  A no-op when no server
# of ours runs there; fails (saying so) when it is still there.
dbp_pg_kill9() {
  local pid
  pid=$(dbp_pid_of "$1/postmaster.pid" "$1") || return 0
  kill -9 -- "-$pid" 2>/dev/null || kill -9 "$pid" 2>/dev/null || true
  dbp_wait 5 dbp_pg_gone "$pid" || { dbp_say "processes of $pid still alive after SIGKILL"; return 1; }
}

# dbp_pg_gone PID: are the postmaster PID and its process group gone, reaped
# too?  Not dbp_gone: a zombie still holds the pid, and a new postmaster takes
# the pid in the old one's lock files for a live server.
dbp_pg_gone() { ! kill -0 -- "-$1" 2>/dev/null && ! kill -0 "$1" 2>/dev/null; }
