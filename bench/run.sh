#!/usr/bin/env bash
# The benchmark, one command: bench/run.sh [N] (default 1000000 users and 1000000 orders).
# Fills a release-built docdb-emu with example-shaped data and measures, in one run and on the
# same data: (a) the source limit (libmongoc draining), (b) the destination limit (SQLite
# writes of pre-converted rows), (c) `docdb-connector sync`, (d) `serve` streaming an Update to
# a C client that only counts, (e) the seed's algorithm in Python, (f) an incremental sync after
# 1% of the documents changed, (g) SQLite alone upserting those same changed rows. Prints a
# table and the target ratios; writes bench/results/. Steps other than e run REPEAT times
# (default 3) and the medians count. Its work files are removed at the end (KEEP_WORK=1 keeps
# them).
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
  # The warehouses take about 1 GB per million documents; KEEP_WORK=1 keeps them to look at.
  if [ -z "${KEEP_WORK:-}" ]; then rm -rf "$work"; else echo "work files kept in $work"; fi
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

# Each step runs REPEAT times (a, b and c interleaved, so that a slow spell of this shared
# machine hits all three), and the summary takes each step's median run.
R=${REPEAT:-3}
for i in $(seq "$R"); do
  measure "a_source.$i" build/bench/docdb-drain "$uri" app users orders
  measure "b_destination.$i" build/bench/docdb-sqlite-limit "$uri" app "$work/limit.db" users orders
  rm -f "$work/c/warehouse.db"* "$work/c/state.json"
  measure "c_sync.$i" build/src/docdb-connector sync --config "$work/c/configuration.json" \
    --state "$work/c/state.json" --destination "sqlite:$work/c/warehouse.db"
done

/usr/bin/time -f '%e %U %S %M' -o "$work/d_server.time" \
  build/src/docdb-connector serve --port 0 --bind 127.0.0.1 >"$work/serve.out" 2>&1 &
serve=$!
for _ in $(seq 100); do grep -q "listening on" "$work/serve.out" && break; sleep 0.1; done
sport=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.out")
for i in $(seq "$R"); do
  measure "d_serve.$i" build/bench/docdb-serve-count "$sport" "$work/c/configuration.json"
done
pkill -TERM -P "$serve" # the server under /usr/bin/time, which then reports
wait "$serve" || true
serve=

measure e_seed /usr/bin/python3 bench/seed_python.py localhost "$port" bench "$password" "$ca" \
  app "$work/e/warehouse.db" "$work/e/state.json"

# f on the warehouse of the last c; each round changes 1% of the documents again.
for i in $(seq "$R"); do
  echo "== changing 1% of the documents"
  sleep 1 # a new second: the touch's updated_at is after since_ms and every earlier touch
  since_ms=$(( $(date +%s) * 1000 ))
  build/tools/seedgen/docdb-seedgen --uri "$uri" --users "$N" --touch $((2 * N / 100))
  measure "f_incremental.$i" build/src/docdb-connector sync \
    --config "$work/c/configuration.json" --state "$work/c/state.json" \
    --destination "sqlite:$work/c/warehouse.db"
  # SQLite's own cost for the same changes: upserted into b's full table the fastest way.
  measure "g_destination_incremental.$i" build/bench/docdb-sqlite-limit --since-ms "$since_ms" \
    "$uri" app "$work/limit.db" users orders
done

/usr/bin/python3 - "$work" "$N" "$R" <<'PY'
import json, os, statistics, sys, time
work, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
docs = 2 * n

def t(name):
    wall, user, sys_, rss = open(os.path.join(work, name + ".time")).read().split()[-4:]
    return {"wall": float(wall), "cpu": float(user) + float(sys_), "rss_mib": int(rss) / 1024}

def lines(name):
    return [json.loads(l) for l in open(os.path.join(work, name + ".out")) if l.startswith("{")]

def step(name, seconds):
    """The median run of a repeated step (seconds(name.i, run) gives a run's time), with
    every run's seconds."""
    runs = []
    for i in range(1, reps + 1):
        r = t("%s.%d" % (name, i))
        r["seconds"] = seconds("%s.%d" % (name, i), r)
        runs.append(r)
    med = sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]
    med = dict(med, runs=[r["seconds"] for r in runs])
    med["rss_mib"] = max(r["rss_mib"] for r in runs)
    return med

timed = lambda name, r: sum(x["seconds"] for x in lines(name))  # the tool's own timing
wall = lambda name, r: r["wall"]
a = step("a_source", timed)
bytes_ = sum(x["bytes"] for x in lines("a_source.1"))
b = step("b_destination", timed)
c = step("c_sync", wall)
d = step("d_serve", wall)
d["server"] = t("d_server")
d["server"]["cpu"] /= reps  # one server process served every run
e = t("e_seed"); e["seconds"] = e["wall"]; e["runs"] = [e["wall"]]
f = step("f_incremental", wall)
g = step("g_destination_incremental", timed)
rows = {"a source (drain)": a, "b destination (SQLite)": b, "c sync": c,
        "d serve (Update)": d, "e seed (Python)": e, "f incremental (1%)": f,
        "g destination, the 1%": g}
print("\nmedian of %d runs (e: one run); seconds of every run on the right" % reps)
print("%-24s %12s %9s %10s %9s   %s" % ("", "docs/s", "MB/s", "peak MiB", "CPU s", "runs (s)"))
for k, v in rows.items():
    count = docs if k[0] not in "fg" else docs // 100
    v["docs_per_s"] = count / v["seconds"]
    rss = v["server"]["rss_mib"] if "server" in v else v["rss_mib"]
    cpu = v["server"]["cpu"] if "server" in v else v["cpu"]
    print("%-24s %12.0f %9.1f %10.1f %9.2f   %s" % (k, v["docs_per_s"],
          bytes_ / v["seconds"] / 1e6 * (count / docs), rss, cpu,
          " ".join("%.2f" % s for s in v["runs"])))
ratios = {
    "c/min(a,b)": c["docs_per_s"] / min(a["docs_per_s"], b["docs_per_s"]),
    "c/e": c["docs_per_s"] / e["docs_per_s"],
    "d/a": d["docs_per_s"] / a["docs_per_s"],
    "f/c (time)": f["seconds"] / c["seconds"],
    "g/c (time)": g["seconds"] / c["seconds"],
    "f/g (time)": f["seconds"] / g["seconds"],
}
targets = {"c/min(a,b)": ">= 0.85", "c/e": ">= 5", "d/a": ">= 0.6", "f/c (time)": "<= 0.02",
           "g/c (time)": "SQLite's own share of f", "f/g (time)": "f over SQLite's own cost"}
print("\nratios of the medians (targets):")
for k, v in ratios.items():
    print("  %-12s %8.3f   (%s)" % (k, v, targets[k]))
print("  peak RSS: sync %.1f MiB, serve %.1f MiB (target < 64)" % (c["rss_mib"], d["server"]["rss_mib"]))
out = {"n_per_collection": n, "documents": docs, "bytes": bytes_, "repeats": reps, "results": rows,
       "ratios": ratios, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
path = os.path.join("bench", "results", "bench-%d-%s.json" % (n, time.strftime("%Y%m%d-%H%M%S")))
json.dump(out, open(path, "w"), indent=2)
print("\nwritten to " + path)
PY
