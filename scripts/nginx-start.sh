#!/usr/bin/env bash
# Start a throwaway nginx (Debian's, with the Lua module) from a config template.
# Usage: eval "$(scripts/nginx-start.sh TEMPLATE)"   -- stdout carries ONLY `export`
# lines; everything else goes to stderr or to files in the prefix.
#
# The template is an ordinary nginx.conf in which these words are replaced:
#   @PREFIX@   the temporary prefix (conf/, logs/, tmp/, nginx.pid live there)
#   @PORT@     a free random port on 127.0.0.1
#   @ROOT@     the project root: lua/ and build/jit/ (the LuaJIT dbpool.core)
#   @WORKERS@  worker_processes: $DBPOOL_NGINX_WORKERS, default 2
#   @USER@     `user nobody nogroup;` when run as root, empty otherwise
# nginx runs in the foreground of its own session (`daemon off`), backgrounded
# here; the pid file it writes once its sockets are bound says it started.
# Variables are passed to Lua only through the template's `env` directives.
# Stop it with scripts/nginx-stop.sh; scripts/with-nginx.sh does both.
#
# Exports DBPOOL_NGINX_PORT, DBPOOL_NGINX_PREFIX, DBPOOL_NGINX_PID,
# DBPOOL_NGINX_ERROR_LOG and DBPOOL_NGINX_CONF (the template's absolute path,
# so specs can tell which app is being served).
set -euo pipefail

say() { echo "dbpool nginx-start: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: eval \"\$($0 TEMPLATE)\"" >&2; exit 2; }
[ -f "$1" ] || { say "no such template: $1"; exit 2; }
template=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)   # works from any cwd
root=$(cd "$here/.." && pwd)
workers=${DBPOOL_NGINX_WORKERS:-2}
[[ $workers =~ ^([1-9][0-9]*|auto)$ ]] || { say "DBPOOL_NGINX_WORKERS must be a number or auto, got $workers"; exit 2; }

# The distribution's own nginx service (port 80, /run/nginx.pid): its pid when
# running.  Ours never use that pid file, so this cannot mistake one of ours.
system_nginx() {
  local p
  p=$(cat /run/nginx.pid 2>/dev/null) || return 1
  [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '^nginx: master' || return 1
  echo "$p"
}
system_before=$(system_nginx || true)
# Quiet when already installed; as non-root it only names what is missing.
# lua-cjson: the example app and the specs encode JSON with it.
"$here/install-deps.sh" nginx-light libnginx-mod-http-lua lua-cjson >&2
# install-deps.sh forbids service starts (policy-rc.d), but a machine with a
# policy of its own may let the package start the system nginx: one we
# caused is stopped again; one that ran before is left alone.
if [ -z "$system_before" ] && sys=$(system_nginx); then
  say "stopping the system nginx (pid $sys) that the package install started"
  kill -QUIT "$sys" 2>/dev/null || true
fi
nginx=/usr/sbin/nginx
modules=/usr/lib/nginx/modules
for f in "$nginx" "$modules/ndk_http_module.so" "$modules/ngx_http_lua_module.so"; do
  [ -e "$f" ] || { say "missing $f (install nginx-light libnginx-mod-http-lua)"; exit 1; }
done
[ -f "$root/build/jit/dbpool/core.so" ] ||
  { say "no $root/build/jit/dbpool/core.so: run \`make all\` first"; exit 1; }

# Next to the PostgreSQL cluster when there is one, so pg-stop.sh's rm also
# covers it; each start gets its own dir (a benchmark starts several).
if [ -n "${DBPOOL_PG_TMP:-}" ] && [ -d "$DBPOOL_PG_TMP" ]; then
  prefix=$(mktemp -d "$DBPOOL_PG_TMP/nginx.XXXXXX")
else
  prefix=$(mktemp -d /tmp/dbpool-nginx.XXXXXX)
fi
conf=$prefix/conf/nginx.conf pidfile=$prefix/nginx.pid
errlog=$prefix/logs/error.log outlog=$prefix/logs/stderr.log

# Workers drop to nobody when the master is root; the master (root) opens
# the logs and reads the config before that, but workers create temp files
# and load Lua modules lazily: the prefix must be readable, tmp/ writable.
if [ "$(id -u)" -eq 0 ]; then
  user_directive="user nobody $(id -gn nobody);"
  run_as=nobody
else
  user_directive=""
  run_as=$(id -un)
fi

started=0 ok=0 pid=''
ours() {   # is $1 a live (not zombie) process started from this prefix's config?
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$conf"
}
kill_ours() {   # TERM, then KILL the whole session (master and workers)
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do ours "$pid" || break; sleep 0.1; done
  # setsid made the master a process-group leader; workers share its group.
  kill -KILL -- "-$pid" 2>/dev/null || true
}

# On any failure (or Ctrl-C) show the logs and leave nothing running or on disk.
cleanup() {
  [ "$ok" = 1 ] && return
  for f in "$outlog" "$errlog"; do
    [ -s "$f" ] && { say "--- $f"; tail -n 30 "$f" >&2; }
  done
  [ "$started" = 1 ] && kill_ours
  rm -rf "$prefix"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
chmod 755 "$prefix" "$prefix/conf" "$prefix/logs"
chown "$run_as:" "$prefix/tmp"

port_busy() {
  if command -v ss >/dev/null; then ss -Hltn "( sport = :$1 )" | grep -q .
  else (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; fi
}

render() {   # render PORT: the template with every placeholder replaced
  local esc_prefix esc_root
  # sed replacement text: escape the delimiter, & and backslashes.
  esc_prefix=$(printf '%s' "$prefix" | sed 's/[|&\\]/\\&/g')
  esc_root=$(printf '%s' "$root" | sed 's/[|&\\]/\\&/g')
  sed -e "s|@PREFIX@|$esc_prefix|g" -e "s|@ROOT@|$esc_root|g" -e "s|@PORT@|$1|g" \
      -e "s|@WORKERS@|$workers|g" -e "s|@USER@|$user_directive|g" "$template" >"$conf"
  if grep -qE '@(PREFIX|ROOT|PORT|WORKERS|USER)@' "$conf"; then say "placeholders left in $conf"; return 1; fi
  if grep -qE '^[[:space:]]*daemon[[:space:]]' "$conf"; then
    say "$template sets 'daemon': leave it out, the script runs nginx with daemon off"; return 1
  fi
}

# A random free port can still be grabbed before nginx binds it: retry.
port=''
for attempt in 1 2 3 4 5; do
  p=$((20000 + RANDOM % 40000))
  port_busy "$p" && continue
  render "$p"
  rm -f "$pidfile" "$errlog" "$outlog"
  # Own session (setsid): the master leads a process group holding every worker,
  # so stopping can never miss one, and no terminal signal reaches it.  Not
  # under our stdout: the caller's $(...) would wait for nginx to exit.
  # Early errors (before error_log is read) go to stderr, hence outlog.
  setsid "$nginx" -p "$prefix/" -c "$conf" -g 'daemon off;' </dev/null >"$outlog" 2>&1 &
  pid=$! started=1
  # The pid file is written after the config was read, init_by_lua ran and
  # every listen socket was bound: then requests will be served (queued in
  # the backlog until a worker takes them).  A failed bind or Lua error
  # makes nginx exit instead.
  for _ in $(seq 150); do
    if [ -s "$pidfile" ] && [ "$(cat "$pidfile")" = "$pid" ]; then port=$p; break; fi
    ours "$pid" || break
    sleep 0.1
  done
  [ -n "$port" ] && break
  kill_ours; started=0 pid=''
  if grep -qs 'Address already in use' "$errlog" "$outlog"; then
    say "port $p taken meanwhile (attempt $attempt)"; continue
  fi
  say "nginx did not start"; exit 1
done
[ -n "$port" ] || { say "could not start nginx"; exit 1; }

# Accepting connections on loopback.  A TCP connect, not an HTTP request:
# a request for a path the template does not route would put an [error]
# line ("index.html is not found") in the log that specs check.
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null ||
  { say "nginx does not accept connections on 127.0.0.1:$port"; exit 1; }

ok=1
say "nginx $("$nginx" -v 2>&1 | sed 's|.*/||') on 127.0.0.1:$port, pid $pid, prefix $prefix"

# Single-quoted so eval copes with any character in the values.
emit() { printf "export %s='%s'\n" "$1" "${2//\'/\'\\\'\'}"; }
emit DBPOOL_NGINX_PORT "$port"
emit DBPOOL_NGINX_PREFIX "$prefix"
emit DBPOOL_NGINX_PID "$pid"
emit DBPOOL_NGINX_ERROR_LOG "$errlog"
emit DBPOOL_NGINX_CONF "$template"
