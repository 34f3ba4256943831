#!/usr/bin/env bash
# Configured nginx headers for csrc/lua_ngx_wait.c, which lets an nginx
# worker's event loop watch libpq's socket.  Debian's nginx-dev holds the
# headers and the flags Debian's nginx was built with; its `configure`
# writes objs/ngx_auto_config.h, which fixes the struct layouts (the build
# uses --with-compat, so module-facing layouts are stable).  The package is
# only downloaded and unpacked, not installed (it would pull debhelper).
# Usage: scripts/ngx-headers.sh DIR   -> DIR/src/..., DIR/objs/...
# Exits 1, saying why, when the headers cannot be had; the build then leaves
# the event-driven wait out and dbpool polls instead.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"; dir=$(cd "$dir" && pwd)
[ -s "$dir/objs/ngx_auto_config.h" ] && exit 0

# configure probes for what Debian's flags ask: PCRE2 (--with-pcre-jit),
# OpenSSL (--with-http_ssl_module), zlib.
"$dbp_here/install-deps.sh" libpcre2-dev libssl-dev zlib1g-dev >&2 || { dbp_say "missing build packages"; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
src=/usr/share/nginx/src
if [ ! -x "$src/configure" ]; then
  # The nginx-dev matching the installed nginx, so the layouts match too.
  version=$(dpkg-query -W -f='${Version}' nginx-common 2>/dev/null) || { dbp_say "nginx is not installed"; exit 1; }
  (cd "$tmp" && apt-get download -q "nginx-dev=$version" >&2 2>/dev/null ||
                apt-get download -q nginx-dev >&2) || { dbp_say "could not download nginx-dev"; exit 1; }
  dpkg-deb -x "$tmp"/nginx-dev_*.deb "$tmp/root"
  src=$tmp/root/usr/share/nginx/src
fi
rm -rf "$dir"; mkdir -p "$dir"
cp -a "$src/." "$dir/"
# shellcheck source=/dev/null
. "$dir/conf_flags"
(cd "$dir" && ./configure "${NGX_CONF_FLAGS[@]}" >"$dir/configure.log" 2>&1) ||
  { dbp_say "configure failed; see $dir/configure.log"; rm -f "$dir/objs/ngx_auto_config.h"; exit 1; }
dbp_say "nginx headers configured in $dir"
