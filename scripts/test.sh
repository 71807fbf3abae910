#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, checks formatting, builds with
# -Werror under AddressSanitizer + UndefinedBehaviorSanitizer and runs every test with ctest.
# Extra arguments go to ctest (e.g. -L unit, -R pymongo).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== format check"
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src tools tests bench -name '*.[ch]')
if [ -n "$files" ]; then
  # shellcheck disable=SC2086
  clang-format --dry-run --Werror $files
fi

build=${BUILD_DIR:-build-asan}
echo "== build ($build: ASan + UBSan, -Werror)"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DDC_SANITIZE=ON -DDC_WERROR=ON >/dev/null
cmake --build "$build" -j"$(nproc)"

echo "== tests"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 600 "$@"
