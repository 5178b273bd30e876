#!/usr/bin/env bash
# fuzz: builds the libFuzzer targets with clang in build-fuzz/ and runs each for a fixed time.
#   scripts/fuzz.sh              30 s (the ctest `fuzz` label in build-fuzz)
#   scripts/fuzz.sh 600          10 minutes
#   IEVO_FUZZ_JOBS=2 scripts/fuzz.sh 300    two fuzzing processes (-fork=2)
# What the fuzzer finds accumulates in build-fuzz/fuzz/<target>/corpus; a crash input lands in
# build-fuzz/fuzz/<target>/artifacts and fails the run. Reproduce one with
#   build-fuzz/fuzz_user_action build-fuzz/fuzz/user_action/artifacts/crash-...
# Targets: tests/fuzz/fuzz.cmake (each runs for the whole time given, one after the other).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/build-fuzz
secs=${1:-${IEVO_FUZZ_SECONDS:-30}}
command -v clang >/dev/null || { echo "fuzz: clang is not installed (scripts/install-deps.sh test)" >&2; exit 1; }
# Configured every time (quick when nothing changed): a build dir from before a new target was
# added has no rule for it until CMake runs again.
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIEVO_FUZZ=ON -DIEVO_WERROR=ON -DCMAKE_C_COMPILER=clang >/dev/null
else
  cmake "$dir" >/dev/null
fi
cmake --build "$dir" -j"$(nproc)" --target fuzz_user_action fuzz_item fuzz_resolve fuzz_seeds fuzz_restore fuzz_model_load \
  fuzz_json fuzz_item_store fuzz_seeds_state >/dev/null 2>"$dir/build.log" || { cat "$dir/build.log" >&2; exit 1; }
IEVO_FUZZ_SECONDS=$secs ctest --test-dir "$dir" -L fuzz --output-on-failure
