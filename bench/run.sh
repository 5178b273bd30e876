#!/usr/bin/env bash
# bench/run.sh: the throughput benchmark in one command (installs, builds, runs, prints figures).
#   bench/run.sh                       ML-100K x10 (when found) + 1 M synthetic users, 3 M events
#   bench/run.sh --quick               small inputs (a smoke run)
#   bench/run.sh --users N --events M --zipf S --movielens DIR --repeat K --json out.json
#   bench/run.sh -- key=value ...      extra worker settings (e.g. commit.interval.ms=5000)
# A benchmark never fails because the machine is slow; it prints what it measured.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" build
command -v python3 >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 >/dev/null; }
"$root/scripts/build.sh" build
export OMP_NUM_THREADS=1
exec python3 "$root/bench/bench.py" "$@"
