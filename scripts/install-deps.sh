#!/usr/bin/env bash
# Ensure the Debian packages dbpool needs are installed; silent when they already are.
# Usage: scripts/install-deps.sh [PKG...]   (no args = the base build/test list)
set -euo pipefail

if [ $# -eq 0 ]; then
  set -- gcc make pkg-config libpq-dev postgresql lua5.4 liblua5.4-dev \
         luajit2 libluajit2-5.1-dev lua-busted lua-cjson lua-posix valgrind
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

apt-get update -qq
# --no-remove: e.g. luajit2 conflicts with Debian's plain luajit; make apt fail
# loudly instead of silently uninstalling something the user relies on.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-remove "${missing[@]}"
