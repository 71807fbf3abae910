#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages (and the Node.js test client's
# npm packages from its lockfile). Does nothing when everything is present, so it is cheap to
# run before every build. Needs root for apt-get (CI and the dev machines run as root).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config clang-format openssl ca-certificates
  libmongoc-dev libbson-dev libssl-dev libsqlite3-dev libcmocka-dev libicu-dev sqlite3 libbsd-dev
  python3 python3-pymongo time
  libgrpc-dev libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
  python3-grpcio python3-protobuf
)
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node.js: any installed node >= 18 with npm will do (Debian's nodejs, or NodeSource's, which
# bundles npm); otherwise Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update
    $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi

# The Node.js driver for the integration tests, pinned by package-lock.json.
node_dir=tests/integration/node
if [ -f "$node_dir/package-lock.json" ]; then
  stamp="$node_dir/node_modules/.lock-stamp"
  if [ ! -f "$stamp" ] || ! cmp -s "$node_dir/package-lock.json" "$stamp"; then
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$node_dir/package-lock.json" "$stamp"
  fi
fi
