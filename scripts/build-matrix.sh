#!/usr/bin/env bash
# build-matrix: compiles ievo (everything the build has: libraries, binary, tests, benchmark) in
# every build type with Debian 12's gcc and clang, warnings as errors, each in its own folder
# under build-matrix/. Prints one line per combination; exits 1 when one fails. Not part of
# `./ievo test` (six builds take several minutes); CI runs it when asked (IEVO_BUILD_MATRIX=1).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fail=0
for cc in gcc clang; do
  for type in Release RelWithDebInfo Debug; do
    dir=$root/build-matrix/$cc-$type
    if CC=$cc cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=$type -DIEVO_WERROR=ON >"$dir.log" 2>&1 &&
       cmake --build "$dir" -j"$(nproc)" >>"$dir.log" 2>&1; then
      echo "build-matrix: $cc $type: ok"
    else
      echo "build-matrix: $cc $type: FAILED (last lines of $dir.log):"; tail -20 "$dir.log"; fail=1
    fi
  done
done
exit $fail
