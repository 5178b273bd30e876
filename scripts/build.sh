#!/usr/bin/env bash
# build: configures (once) and builds ievo in build/ (or $1 with extra CMake args after it).
#   scripts/build.sh                 -> build/ (RelWithDebInfo)
#   scripts/build.sh build-asan -DIEVO_SANITIZE=ON
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
shift || true
[ -f "$root/$dir/CMakeCache.txt" ] || cmake -S "$root" -B "$root/$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$root/$dir" -j"$(nproc)" >"$root/$dir/build.log" 2>&1 || { tail -50 "$root/$dir/build.log" >&2; exit 1; }
