#!/usr/bin/env bash
# Generates the TLS material of the integration tests into DIR: a CA, a server certificate it
# signed (for localhost and 127.0.0.1), and a second, unrelated CA that clients must not trust.
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
[ -f server.pem ] && [ -f other-ca.pem ] && exit 0
gen_ca() { # name
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=docdb-connector test $1" \
    -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
gen_ca ca
gen_ca other-ca
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr \
  2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
