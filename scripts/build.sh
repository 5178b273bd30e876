#!/usr/bin/env bash
# build: configures and builds ievo in build/ (or $1, with CMake arguments after it; a folder
# configured before is configured again only when arguments are given).
#   scripts/build.sh                 -> build/ (RelWithDebInfo, or $IEVO_BUILD_TYPE)
#   scripts/build.sh build-asan -DIEVO_SANITIZE=ON -DIEVO_WERROR=ON
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
shift || true
if [ ! -f "$root/$dir/CMakeCache.txt" ] || [ $# -gt 0 ]; then
  cmake -S "$root" -B "$root/$dir" -DCMAKE_BUILD_TYPE="${IEVO_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
fi
cmake --build "$root/$dir" -j"$(nproc)" >"$root/$dir/build.log" 2>&1 || { tail -50 "$root/$dir/build.log" >&2; exit 1; }
