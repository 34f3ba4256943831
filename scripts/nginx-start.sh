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
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -eq 1 ] || { echo "usage: eval \"\$($0 TEMPLATE)\"" >&2; exit 2; }
[ -f "$1" ] || { dbp_say "no such template: $1"; exit 2; }
template=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
root=$dbp_root
workers=${DBPOOL_NGINX_WORKERS:-2}
[[ $workers =~ ^([1-9][0-9]*|auto)$ ]] || { dbp_say "DBPOOL_NGINX_WORKERS must be a number or auto, got $workers"; exit 2; }

# The distribution's own nginx service (port 80, /run/nginx.pid): its pid when
# running.  Ours never use that pid file, so this cannot mistake one of ours.
system_nginx() {
  local p
  p=$(cat /run/nginx.pid 2>/dev/null) || return 1
  [[ $(dbp_cmdline "$p") == 'nginx: master'* ]] || return 1
  echo "$p"
}
system_before=$(system_nginx || true)
# Quiet when already installed; as non-root it only names what is missing.
# lua-cjson: the example app and the specs encode JSON with it.
"$dbp_here/install-deps.sh" nginx-light libnginx-mod-http-lua lua-cjson >&2
# install-deps.sh forbids service starts (policy-rc.d), but a machine with a
# policy of its own may let the package start the system nginx: one we
# caused is stopped again; one that ran before is left alone.
if [ -z "$system_before" ] && sys=$(system_nginx); then
  dbp_say "stopping the system nginx (pid $sys) that the package install started"
  kill -QUIT "$sys" 2>/dev/null || true
fi
nginx=/usr/sbin/nginx
modules=/usr/lib/nginx/modules
for f in "$nginx" "$modules/ndk_http_module.so" "$modules/ngx_http_lua_module.so"; do
  [ -e "$f" ] || { dbp_say "missing $f (install nginx-light libnginx-mod-http-lua)"; exit 1; }
done
[ -f "$root/build/jit/dbpool/core.so" ] ||
  { dbp_say "no $root/build/jit/dbpool/core.so: run \`make all\` first"; exit 1; }

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
run_as=$(dbp_service_user) user_directive=''
[ "$run_as" = "$(id -un)" ] || user_directive="user $run_as $(id -gn "$run_as");"

ok=0 pid=''
# TERM, then KILL the whole session (setsid: master and workers).
kill_ours() { dbp_group_stop "$pid" "$conf" nginx; pid=''; }

# On any failure (or Ctrl-C) show the logs and leave nothing running or on disk.
cleanup() {
  [ "$ok" = 1 ] && return
  dbp_show_logs "$outlog" "$errlog"
  kill_ours
  rm -rf "$prefix"
}
dbp_on_exit cleanup

mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"
chmod 755 "$prefix" "$prefix/conf" "$prefix/logs"
dbp_chown "$run_as" "$prefix/tmp"

# The workers' Lua: an app loads its modules in init_by_lua, as the master,
# but a Lua VM of ngx.run_worker_thread loads them afresh, as the worker's
# user.  A checkout only its owner can read (mode 700, as `mktemp -d` makes
# and many home directories are) gets them a readable copy of what the
# template's Lua paths name: lua/, dbpool.core and the template's directory.
if ! dbp_as "$run_as" / test -r "$root/lua/dbpool/init.lua"; then
  stage=$prefix/root tdir=$(dirname "${template#"$root"/}")
  mkdir -p "$stage/build/jit" "$stage/$tdir"
  cp -R "$root/lua" "$stage/"
  cp -R "$root/build/jit/dbpool" "$stage/build/jit/"
  # The template's own Lua modules, if it has any.
  find "$(dirname "$template")" -maxdepth 1 -name '*.lua' -exec cp {} "$stage/$tdir/" \;
  chmod -R a+rX "$stage"
  dbp_say "$root is not readable by $run_as: its workers get a copy in $stage"
  root=$stage
fi

render() {   # render PORT: the template with every placeholder replaced
  local esc_prefix esc_root
  # sed replacement text: escape the delimiter, & and backslashes.
  esc_prefix=$(printf '%s' "$prefix" | sed 's/[|&\\]/\\&/g')
  esc_root=$(printf '%s' "$root" | sed 's/[|&\\]/\\&/g')
  sed -e "s|@PREFIX@|$esc_prefix|g" -e "s|@ROOT@|$esc_root|g" -e "s|@PORT@|$1|g" \
      -e "s|@WORKERS@|$workers|g" -e "s|@USER@|$user_directive|g" "$template" >"$conf"
  if grep -qE '@(PREFIX|ROOT|PORT|WORKERS|USER)@' "$conf"; then dbp_say "placeholders left in $conf"; return 1; fi
  if grep -qE '^[[:space:]]*daemon[[:space:]]' "$conf"; then
    dbp_say "$template sets 'daemon': leave it out, the script runs nginx with daemon off"; return 1
  fi
}

# settled: nginx wrote its pid file, or it is gone.  The pid file is written
# after the config was read, init_by_lua ran and every listen socket was bound:
# then requests will be served (queued in the backlog until a worker takes
# them).  A failed bind or Lua error makes nginx exit instead.
# (Exited, not "not ours": right after the fork, before setsid execs, the
# child still shows this script's command line: the first start on a cold
# machine once took that for a failed start.)
settled() { [ "$(cat "$pidfile" 2>/dev/null)" = "$pid" ] || dbp_dead "$pid"; }

# start_on PORT: start nginx on PORT; a failure other than a taken port ends it all.
start_on() {
  render "$1" || exit 1
  rm -f "$pidfile" "$errlog" "$outlog"
  # Own session (setsid): the master leads a process group holding every worker,
  # so stopping can never miss one, and no terminal signal reaches it.  Not
  # under our stdout: the caller's $(...) would wait for nginx to exit.
  # Early errors (before error_log is read) go to stderr, hence outlog.
  setsid "$nginx" -p "$prefix/" -c "$conf" -g 'daemon off;' </dev/null >"$outlog" 2>&1 &
  pid=$!
  dbp_wait 15 settled && dbp_ours "$pid" "$conf" && return 0
  kill_ours
  grep -qs 'Address already in use' "$errlog" "$outlog" && return 1
  dbp_say "nginx did not start"; exit 1
}
dbp_on_free_port nginx start_on || exit 1
port=$dbp_port

# Accepting connections on loopback.  A TCP connect, not an HTTP request:
# a request for a path the template does not route would put an [error]
# line ("index.html is not found") in the log that specs check.
dbp_wait 5 dbp_connects "$port" ||
  { dbp_say "nginx does not accept connections on 127.0.0.1:$port"; exit 1; }

ok=1
dbp_say "nginx $("$nginx" -v 2>&1 | sed 's|.*/||') on 127.0.0.1:$port, pid $pid, prefix $prefix"

dbp_emit DBPOOL_NGINX_PORT "$port"
dbp_emit DBPOOL_NGINX_PREFIX "$prefix"
dbp_emit DBPOOL_NGINX_PID "$pid"
dbp_emit DBPOOL_NGINX_ERROR_LOG "$errlog"
dbp_emit DBPOOL_NGINX_CONF "$template"
