#!/usr/bin/env bash
# The main job, end to end on one machine: builds the connector and docdb-emu, starts docdb-emu
# the way DocumentDB runs (TLS, SCRAM-SHA-1) with example-shaped users and orders, syncs them
# into files/warehouse.db (state in files/state.json, as `fivetran debug` does), changes 100
# users, and syncs again: the second sync reads exactly the changes.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDC_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

demo=files/demo
mkdir -p "$demo"
tests/integration/make-certs.sh "$demo/certs"
password=$(openssl rand -hex 12)
out=$(mktemp)
build/tools/docdb-emu/docdb-emu --port 0 --tls-cert "$demo/certs/server.pem" \
  --tls-key "$demo/certs/server.key" --user "demo:$password" >"$out" &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "demo: docdb-emu did not start" >&2; exit 1; }
echo "== docdb-emu: listening on 127.0.0.1:$port (TLS, SCRAM-SHA-1)"

uri="mongodb://demo:$password@localhost:$port/?tls=true&tlsCAFile=$demo/certs/ca.pem&authMechanism=SCRAM-SHA-1&retryWrites=false"
build/tools/seedgen/docdb-seedgen --uri "$uri" --users 20000 --orders 50000

# The seed example's configuration.json, plus the CA bundle our TLS check needs.
cat >"$demo/configuration.json" <<JSON
{
  "hostname": "localhost",
  "port": "$port",
  "username": "demo",
  "password": "$password",
  "database": "app",
  "tls_ca_file": "$demo/certs/ca.pem"
}
JSON
# A fresh warehouse for a fresh server (what `fivetran reset` does).
rm -f files/warehouse.db files/warehouse.db-wal files/warehouse.db-shm files/state.json

echo "== first sync: every document"
build/src/docdb-connector sync --config "$demo/configuration.json"

echo "== 100 users change"
build/tools/seedgen/docdb-seedgen --uri "$uri" --users 20000 --touch 100

echo "== second sync: only the changes"
build/src/docdb-connector sync --config "$demo/configuration.json"

echo "== the warehouse (files/warehouse.db)"
sqlite3 -header -column files/warehouse.db \
  "SELECT 'users' AS tbl, count(*) AS rows FROM users UNION ALL SELECT 'orders', count(*) FROM orders;" \
  "SELECT _id, order_number, total_amount, substr(items, 1, 60) AS items, updated_at FROM orders LIMIT 3;"
