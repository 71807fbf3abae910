#!/usr/bin/env bash
# The main job, for now: builds docdb-emu, starts it the way DocumentDB runs (TLS, SCRAM-SHA-1),
# fills it with example-shaped users and orders, and shows a client reading them back.
# (When `docdb-connector sync` lands, this runs the sync into files/warehouse.db instead.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDC_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

work=files/demo
mkdir -p "$work"
tests/integration/make-certs.sh "$work/certs"
password=$(openssl rand -hex 12)
out=$(mktemp)
build/tools/docdb-emu/docdb-emu --port 0 --tls-cert "$work/certs/server.pem" \
  --tls-key "$work/certs/server.key" --user "demo:$password" >"$out" &
emu=$!
trap 'kill $emu 2>/dev/null; wait $emu 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { echo "demo: docdb-emu did not start" >&2; exit 1; }
echo "docdb-emu: listening on 127.0.0.1:$port (TLS, SCRAM-SHA-1)"

uri="mongodb://demo:$password@localhost:$port/?tls=true&tlsCAFile=$work/certs/ca.pem&authMechanism=SCRAM-SHA-1&retryWrites=false"
build/tools/seedgen/docdb-seedgen --uri "$uri" --users 1000 --orders 3000

# A client reading it back: Debian's pymongo (system interpreter).
DEMO_PORT=$port DEMO_PASSWORD=$password DEMO_CA=$work/certs/ca.pem /usr/bin/python3 - <<'PY'
import os
import pymongo
from bson import json_util

c = pymongo.MongoClient("localhost", int(os.environ["DEMO_PORT"]), tls=True,
                        tlsCAFile=os.environ["DEMO_CA"], username="demo",
                        password=os.environ["DEMO_PASSWORD"], authMechanism="SCRAM-SHA-1")
db = c.app
for name in db.list_collection_names():
    coll = db[name]
    print("%s: %d documents" % (name, coll.estimated_document_count()))
    newest = coll.find_one(sort=[("updated_at", -1), ("_id", 1)])
    print("  newest:", json_util.dumps(newest, json_options=json_util.RELAXED_JSON_OPTIONS)[:300])
PY
