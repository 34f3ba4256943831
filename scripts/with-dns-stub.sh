#!/usr/bin/env bash
# Run CMD with a name server that is slow to answer (spec/nginx/dns_stub.c:
# every query answered DELAY_MS milliseconds late; names under .dbpool.test
# are 127.0.0.1, others do not exist), seen by CMD and everything it starts
# as the only one: a mount namespace of CMD's own bind-mounts a resolv.conf
# naming it over /etc/resolv.conf.  The machine's own resolver is untouched.
# Exports DBPOOL_DNS_LOG (one line per query: "name qtype") and
# DBPOOL_DNS_DELAY_MS.  Needs root (port 53, unshare -m): otherwise CMD runs
# without them and spec/nginx/dns_spec.lua says why it does not run.
# Usage: scripts/with-dns-stub.sh DELAY_MS CMD [ARGS...]  -- exits with CMD's status.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -gt 1 ] || { echo "usage: $0 DELAY_MS CMD [ARGS...]" >&2; exit 2; }
delay=$1; shift
stub=$dbp_root/build/dns_stub
[ -x "$stub" ] || { dbp_say "no $stub: run \`make build/dns_stub\` first"; exit 1; }

if [ "$(id -u)" -ne 0 ] || ! unshare -m true 2>/dev/null; then
  dbp_say "not root, or no mount namespaces here: CMD runs with the machine's resolver"
  exec "$@"
fi

dir=$(mktemp -d /tmp/dbpool-dns.XXXXXX)
pid=''
# shellcheck disable=SC2317  # run by the EXIT trap
finish() { [ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$dir"; }
dbp_on_exit finish

# A loopback address of its own: nothing else listens on port 53 there.
addr=127.0.53.53
: >"$dir/queries.log"
chmod 644 "$dir/queries.log"
chmod 755 "$dir"
"$stub" "$addr" "$delay" "$dir/queries.log" >"$dir/stub.out" 2>&1 &
pid=$!
dbp_wait 10 grep -q ready "$dir/stub.out" || { dbp_say "the name server did not start:"; cat "$dir/stub.out" >&2; exit 1; }
printf 'nameserver %s\noptions timeout:10 attempts:1\n' "$addr" >"$dir/resolv.conf"
chmod 644 "$dir/resolv.conf"

export DBPOOL_DNS_LOG=$dir/queries.log DBPOOL_DNS_DELAY_MS=$delay
dbp_run unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$dir/resolv.conf" "$@"
