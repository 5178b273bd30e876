#!/usr/bin/env bash
# test: installs what the tests need, builds ievo twice (plain, and with AddressSanitizer +
# UndefinedBehaviorSanitizer) and runs every test: unit tests in both builds, the numeric and
# Avro oracles, and the integration tests against a local `ievo broker` over TCP.
#   ./ievo test            everything (and 30 s of fuzzing the record decoder)
#   ./ievo test -L unit    a ctest label (unit | oracle | integration), or any ctest arguments
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" test
# Warnings are errors here (IEVO_WERROR), not in a user's build.
"$root/scripts/build.sh" build -DIEVO_WERROR=ON
"$root/scripts/build.sh" build-asan -DIEVO_SANITIZE=ON -DIEVO_WERROR=ON
export OMP_NUM_THREADS=1
# Leak checks stay on for our code; libgomp/oneDNN keep some thread-local allocations alive.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "== unit tests and the worker end to end, AddressSanitizer + UndefinedBehaviorSanitizer build" >&2
ctest --test-dir "$root/build-asan" -L unit --output-on-failure -j2
ctest --test-dir "$root/build-asan" -R 'integration_test_worker_(e2e|dlq|text)' --output-on-failure -j2
echo "== all tests, release build" >&2
# Two at a time: each integration test runs its own broker on its own ports.
ctest --test-dir "$root/build" --output-on-failure -j2 "$@"
if [ $# -eq 0 ]; then
  echo "== the record decoder under libFuzzer (ASan+UBSan), ${IEVO_FUZZ_SECONDS:-30} s" >&2
  "$root/scripts/fuzz.sh" "${IEVO_FUZZ_SECONDS:-30}"
fi
