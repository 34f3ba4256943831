#!/usr/bin/env bash
# Run examples/quickstart.lua on Lua 5.4: what `make demo` runs after deps.
# Against DATABASE_URL when it is set; otherwise against a throwaway
# PostgreSQL (scripts/with-pg.sh), which is stopped and deleted afterwards.
# Usage: scripts/demo.sh   (from any directory)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

make -s all

export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;;"
export LUA_CPATH="$root/build/5.4/?.so;;"

if [ -n "${DATABASE_URL:-}" ]; then
  # One database serves both markets, whatever DATABASE_URL_KG/US say.
  unset DATABASE_URL_KG DATABASE_URL_US
  echo "dbpool demo: using DATABASE_URL" >&2
  exec lua5.4 "$root/examples/quickstart.lua"
fi

# with-pg.sh exports DATABASE_URL_KG / DATABASE_URL_US for the throwaway server.
exec "$root/scripts/with-pg.sh" lua5.4 "$root/examples/quickstart.lua"
