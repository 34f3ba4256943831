#!/usr/bin/env bash
# Ensure the Debian packages dbpool needs are installed; silent when they already are.
# Usage: scripts/install-deps.sh [PKG...]   (no args = the base build/test list)
set -euo pipefail

if [ $# -eq 0 ]; then
  set -- gcc make pkg-config libpq-dev postgresql lua5.4 liblua5.4-dev \
         luajit2 libluajit2-5.1-dev lua-busted lua-cjson lua-posix valgrind luarocks \
         prometheus pgbouncer nginx-light libnginx-mod-http-lua curl wrk openssl
fi

missing=()
for pkg in "$@"; do
  # Capture first instead of piping into grep -q: under pipefail an early grep
  # exit could SIGPIPE dpkg-query and report an installed package as missing.
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ $status == *'install ok installed'* ]] || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "dbpool: missing Debian packages: ${missing[*]}" >&2
  echo "dbpool: install them with: sudo apt-get install --no-remove ${missing[*]}" >&2
  exit 1
fi

# Packages such as postgresql, pgbouncer and prometheus start a system
# service on install; dbpool runs its own throwaway servers, so forbid
# service starts while installing (Debian's policy-rc.d, exit 101), unless
# the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

apt-get update -qq
# --no-remove: e.g. luajit2 conflicts with Debian's plain luajit; make apt fail
# loudly instead of silently uninstalling something the user relies on.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove "${missing[@]}"
