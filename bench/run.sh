#!/usr/bin/env bash
# The benchmark, one command: bench/run.sh [N] (default 1000000 users and 1000000 orders).
# Fills a release-built docdb-emu with example-shaped data and measures, in one run and on the
# same data: (a) the source limit (libmongoc draining), (b) the destination limit (SQLite
# writes of pre-converted rows), (c) `docdb-connector sync`, (d) `serve` streaming an Update to
# a C client that only counts, (e) the seed's algorithm in Python, (f) an incremental sync after
# 1% of the documents changed, (g) SQLite alone upserting those same changed rows. Prints a
# table and the target ratios; writes bench/results/.
# Not part of the test suite (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDC_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

work=$(mktemp -d /tmp/dc-bench.XXXXXX)
mkdir -p bench/results "$work/c" "$work/e"
tests/integration/make-certs.sh "$work/certs"
password=$(openssl rand -hex 12)
build/tools/docdb-emu/docdb-emu --port 0 --tls-cert "$work/certs/server.pem" \
  --tls-key "$work/certs/server.key" --user "bench:$password" >"$work/emu.out" &
emu=$!
serve=
cleanup() {
  kill "$emu" 2>/dev/null || true
  [ -n "$serve" ] && kill "$serve" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q "listening on" "$work/emu.out" && break; sleep 0.1; done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/emu.out")
ca=$work/certs/ca.pem
uri="mongodb://bench:$password@localhost:$port/?tls=true&tlsCAFile=$ca&authMechanism=SCRAM-SHA-1&retryWrites=false"
echo "== generating $N users and $N orders"
build/tools/seedgen/docdb-seedgen --uri "$uri" --users "$N" --orders "$N"

cat >"$work/c/configuration.json" <<JSON
{"hostname": "localhost", "port": "$port", "username": "bench", "password": "$password",
 "database": "app", "tls_ca_file": "$ca"}
JSON

# measure NAME CMD...: wall, user, sys seconds and peak RSS (KiB) of CMD into NAME.time.
measure() {
  local name=$1
  shift
  echo "== $name"
  # Every step starts with no dirty pages of an earlier one left for the kernel to write back
  # under its own fsyncs (b leaves ~0.6 GB of SQLite pages behind for c, otherwise).
  sync
  /usr/bin/time -f '%e %U %S %M' -o "$work/$name.time" "$@" >"$work/$name.out" 2>"$work/$name.err"
}

measure a_source build/bench/docdb-drain "$uri" app users orders
measure b_destination build/bench/docdb-sqlite-limit "$uri" app "$work/limit.db" users orders
measure c_sync build/src/docdb-connector sync --config "$work/c/configuration.json" \
  --state "$work/c/state.json" --destination "sqlite:$work/c/warehouse.db"

/usr/bin/time -f '%e %U %S %M' -o "$work/d_server.time" \
  build/src/docdb-connector serve --port 0 --bind 127.0.0.1 >"$work/serve.out" 2>&1 &
serve=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
sport=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.out")
measure d_serve build/bench/docdb-serve-count "$sport" "$work/c/configuration.json"
pkill -TERM -P "$serve" # the server under /usr/bin/time, which then reports
wait "$serve" || true
serve=

measure e_seed /usr/bin/python3 bench/seed_python.py localhost "$port" bench "$password" "$ca" \
  app "$work/e/warehouse.db" "$work/e/state.json"

echo "== changing 1% of the documents"
since_ms=$(( ($(date +%s) - 1) * 1000 ))
build/tools/seedgen/docdb-seedgen --uri "$uri" --users "$N" --touch $((2 * N / 100))
measure f_incremental build/src/docdb-connector sync --config "$work/c/configuration.json" \
  --state "$work/c/state.json" --destination "sqlite:$work/c/warehouse.db"
# SQLite's own cost for the same changes: upserted into b's full table the fastest way.
measure g_destination_incremental build/bench/docdb-sqlite-limit --since-ms "$since_ms" "$uri" \
  app "$work/limit.db" users orders

/usr/bin/python3 - "$work" "$N" <<'PY'
import json, os, sys, time
work, n = sys.argv[1], int(sys.argv[2])
docs = 2 * n

def t(name):
    wall, user, sys_, rss = open(os.path.join(work, name + ".time")).read().split()[-4:]
    return {"wall": float(wall), "cpu": float(user) + float(sys_), "rss_mib": int(rss) / 1024}

def lines(name):
    return [json.loads(l) for l in open(os.path.join(work, name + ".out")) if l.startswith("{")]

a = t("a_source"); drain = lines("a_source")
a["seconds"] = sum(x["seconds"] for x in drain)
bytes_ = sum(x["bytes"] for x in drain)
b = t("b_destination"); b["seconds"] = sum(x["seconds"] for x in lines("b_destination"))
c = t("c_sync"); c["seconds"] = c["wall"]
d = t("d_serve"); d["seconds"] = d["wall"]; d["server"] = t("d_server")
d["records"] = lines("d_serve")[0]["records"]
e = t("e_seed"); e["seconds"] = e["wall"]
f = t("f_incremental"); f["seconds"] = f["wall"]
g = t("g_destination_incremental")
g["seconds"] = sum(x["seconds"] for x in lines("g_destination_incremental"))
rows = {"a source (drain)": a, "b destination (SQLite)": b, "c sync": c,
        "d serve (Update)": d, "e seed (Python)": e, "f incremental (1%)": f,
        "g destination, the 1%": g}
print("\n%-24s %12s %9s %10s %9s" % ("", "docs/s", "MB/s", "peak MiB", "CPU s"))
for k, v in rows.items():
    count = docs if k[0] not in "fg" else docs // 100
    v["docs_per_s"] = count / v["seconds"]
    rss = v["server"]["rss_mib"] if "server" in v else v["rss_mib"]
    cpu = v["server"]["cpu"] if "server" in v else v["cpu"]
    print("%-24s %12.0f %9.1f %10.1f %9.2f" % (k, v["docs_per_s"],
          bytes_ / v["seconds"] / 1e6 * (count / docs), rss, cpu))
ratios = {
    "c/min(a,b)": c["docs_per_s"] / min(a["docs_per_s"], b["docs_per_s"]),
    "c/e": c["docs_per_s"] / e["docs_per_s"],
    "d/a": d["docs_per_s"] / a["docs_per_s"],
    "f/c (time)": f["seconds"] / c["seconds"],
    "g/c (time)": g["seconds"] / c["seconds"],
}
targets = {"c/min(a,b)": ">= 0.85", "c/e": ">= 5", "d/a": ">= 0.6", "f/c (time)": "<= 0.02",
           "g/c (time)": "SQLite's own share of f"}
print("\nratios (targets):")
for k, v in ratios.items():
    print("  %-12s %8.3f   (%s)" % (k, v, targets[k]))
print("  peak RSS: sync %.1f MiB, serve %.1f MiB (target < 64)" % (c["rss_mib"], d["server"]["rss_mib"]))
out = {"n_per_collection": n, "documents": docs, "bytes": bytes_, "results": rows,
       "ratios": ratios, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
path = os.path.join("bench", "results", "bench-%d-%s.json" % (n, time.strftime("%Y%m%d-%H%M%S")))
json.dump(out, open(path, "w"), indent=2)
print("\nwritten to " + path)
PY
