#!/usr/bin/env bash
# Make a throwaway certificate authority and a server certificate signed by
# it, for a test server with TLS (scripts/pg-start.sh with DBPOOL_PG_SSL_DIR),
# and a second, unrelated CA that must not be trusted for that server.
# Usage: scripts/tls-certs.sh DIR   -- DIR must exist; writes in it:
#   ca.crt              the CA a client passes as sslrootcert
#   server.crt, server.key   CN 127.0.0.1, SAN IP:127.0.0.1 and DNS:localhost
#   other-ca.crt        another CA: verify-full against it must fail
# Valid for two days: nothing here outlives a test run.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=${1:?usage: $0 DIR}
[ -d "$dir" ] || { dbp_say "no directory $dir"; exit 2; }
command -v openssl >/dev/null || { dbp_say "no openssl (scripts/install-deps.sh installs it)"; exit 1; }
cd "$dir"

# ca NAME: a self-signed CA certificate NAME.crt with its key NAME.key (P-256: fast to make).
ca() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=dbpool throwaway $1" -keyout "$1.key" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    2>/dev/null
}
ca ca
ca other-ca
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout server.key -out server.csr 2>/dev/null
printf '%s\n' 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'basicConstraints=CA:FALSE' \
  'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.crt 2>/dev/null
rm -f server.csr server.ext ca.srl other-ca.key
chmod 600 server.key ca.key
