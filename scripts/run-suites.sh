#!/usr/bin/env bash
# Runs each suite, shows its output, and counts TAP lines ("ok N", "not ok N")
# across all of them.  A suite that exits non-zero without a failing line, or
# that runs no test at all, counts as one failure.  Needs the environment of
# scripts/with-pg.sh.  Exits non-zero on any failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

passed=0
failed=0
out=$(mktemp)
# What each failed suite printed last, repeated just before the summary line:
# a CI log that keeps only its tail still says which suite failed, and why.
failures=$(mktemp)
trap 'rm -f "$out" "$failures"' EXIT

suite() {
  local name=$1; shift
  echo "=== $name"
  "$@" >"$out" 2>&1
  local rc=$?
  cat "$out"
  local p f
  p=$(grep -cE '^ok [0-9]+' "$out")
  f=$(grep -cE '^not ok [0-9]+' "$out")
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
    echo "# $name ran no test (exit $rc)"; f=1
  elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "# $name exited $rc without a failing test line"; f=1
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    { echo "# --- $name: $f failed (exit $rc); its failing lines and last lines:"
      grep -E '^not ok [0-9]+' "$out" | head -n 5
      tail -n 12 "$out"; } >>"$failures"
  fi
}

# C tests of the core, plain and under sanitizers.
for variant in plain asan tsan; do
  for t in "build/ctest/$variant"/test_*; do
    [ -x "$t" ] || continue
    suite "C $variant $(basename "$t")" "$t"
  done
done

# busted specs on both Lua ABIs.
# busted_with BUILD CMD...: runs CMD with the module of build/BUILD on the path.
busted_with() {
  local build=$1; shift
  LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;;" \
  LUA_CPATH="$root/build/$build/?.so;;" "$@"
}
suite "busted lua5.4" busted_with 5.4 lua5.4 /usr/bin/busted -o TAP spec
suite "busted luajit" busted_with jit luajit /usr/bin/busted -o TAP spec
# The whole suite once more through PgBouncer in transaction pooling: every
# engine with pgbouncer = true, and "the server" a spec counts, kills, stops
# and restarts is PgBouncer (spec/helper.lua, DBPOOL_SPEC_VIA).
DBPOOL_SPEC_VIA=pgbouncer suite "busted lua5.4 through PgBouncer" busted_with 5.4 \
  lua5.4 /usr/bin/busted -o TAP spec
DBPOOL_SPEC_VIA=pgbouncer suite "busted luajit through PgBouncer" busted_with jit \
  luajit /usr/bin/busted -o TAP spec
# The specs once more under valgrind (Lua 5.4): no invalid access, no
# definite leak in the binding.  TAP lines count again: it is another run.
DBPOOL_TIME_SCALE=10 suite "valgrind busted lua5.4" busted_with 5.4 \
  valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=9 \
  lua5.4 /usr/bin/busted -o TAP spec
# OpenResty (Debian's nginx + Lua module): the example app, and one worker
# serving concurrent requests; each suite on its own throwaway nginx.
# busted_with wraps with-nginx.sh: a shell function cannot be exec'd.
suite "nginx examples/openresty" busted_with jit \
  scripts/with-nginx.sh examples/openresty/nginx.conf luajit /usr/bin/busted -o TAP spec/nginx
suite "nginx one worker" busted_with jit \
  scripts/with-nginx.sh spec/nginx/nginx.conf luajit /usr/bin/busted -o TAP spec/nginx
suite "nginx two workers, one cap" busted_with jit \
  scripts/with-nginx.sh spec/nginx/cap.conf luajit /usr/bin/busted -o TAP spec/nginx
suite "nginx two workers, one instance" busted_with jit \
  scripts/with-nginx.sh spec/nginx/instance.conf luajit /usr/bin/busted -o TAP spec/nginx
# A DSN host name that only a name server slow to answer knows (2 s): the
# lookup must not stall the worker (needs root; else the spec says why not).
suite "nginx slow name server" busted_with jit \
  scripts/with-dns-stub.sh 2000 scripts/with-nginx.sh spec/nginx/dns.conf luajit /usr/bin/busted -o TAP spec/nginx
# The scale harness (examples/scale, `make demo-scale`) at 50 connections,
# 2 s a phase: it starts a cluster, PgBouncer and nginx of its own, measures
# every phase, and leaves nothing behind (about 45 s).
suite "nginx scale harness, smoke" spec/nginx/scale_smoke.sh
# An app's own configuration specs, as a dbpool user writes them: they need
# no server, so every DSN they could reach points at a closed port.
suite "examples/spec lua5.4, no server" busted_with 5.4 \
  env -u DBPOOL_TEST_DSN DATABASE_URL_KG=postgresql://127.0.0.1:1/shop_kg \
  DATABASE_URL_US=postgresql://127.0.0.1:1/shop_us lua5.4 /usr/bin/busted -o TAP examples/spec
# The rock as a user installs it: `luarocks make` into a throwaway tree (the
# Makefile's flags, so `make exports` checks its module too), then
# `luarocks test`, busted on the installed rock, against this server.  Its
# dependencies (lua-cjson) come from Debian here (scripts/install-deps.sh),
# not from luarocks.org: --deps-mode=none.
rock() {
  local tree rc
  tree=$(mktemp -d)
  luarocks --lua-version=5.4 --tree="$tree" make --deps-mode=none rockspec/dbpool-scm-1.rockspec &&
    make -s exports &&
    (eval "$(luarocks --lua-version=5.4 --tree="$tree" path)" &&
     luarocks --lua-version=5.4 --tree="$tree" test rockspec/dbpool-scm-1.rockspec -- -o TAP)
  rc=$?
  rm -rf "$tree"
  return "$rc"
}
suite "luarocks make + test lua5.4" rock
# The API reference builds from the doc comments (a second or two).
once() {   # once NAME CMD...: one TAP line for CMD's exit status
  local name=$1; shift
  if "$@"; then echo "ok 1 - $name"; else echo "not ok 1 - $name"; fi
}
suite "make docs" once "make docs" make -s docs

if [ -s "$failures" ]; then
  echo "=== what failed"
  cat "$failures"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
