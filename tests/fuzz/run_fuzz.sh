#!/bin/sh
# run_fuzz: one fixed-time fuzzing run of a libFuzzer target (the `fuzz` ctest label).
#   run_fuzz.sh FUZZER SEEDGEN WORKDIR [SEEDGEN_FLAG [MAX_LEN]]   (fuzz_seeds --item for the Item
#   target; MAX_LEN: the longest input, 2048 bytes unless given)
# Writes fresh seeds to WORKDIR/seeds, keeps what the fuzzer finds in WORKDIR/corpus (it grows
# from run to run), crash inputs in WORKDIR/artifacts. Fails on any crash, leak, timeout,
# allocation of 64 MB or more, or RSS over 512 MB.
#   IEVO_FUZZ_SECONDS  time budget (default 30)
#   IEVO_FUZZ_JOBS     parallel fuzzing processes (default 1), each for the whole budget
#   IEVO_FUZZ_ARGS     more libFuzzer flags
set -eu
fuzzer=$1 seedgen=$2 work=$3 seedflag=${4:-} maxlen=${5:-2048}
secs=${IEVO_FUZZ_SECONDS:-30}
jobs=${IEVO_FUZZ_JOBS:-1}
rm -rf "$work/seeds"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$seedgen" $seedflag "$work/seeds"
set -- -max_total_time="$secs" -rss_limit_mb=512 -malloc_limit_mb=64 -timeout=10 -max_len="$maxlen" \
       -print_final_stats=1 -artifact_prefix="$work/artifacts/" ${IEVO_FUZZ_ARGS:-}
# The harness mallocs and frees on every input; a smaller ASan quarantine keeps RSS well under
# the 512 MB limit however long the run.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=64"
before=$(ls "$work/artifacts" | wc -l)
rc=0
if [ "$jobs" -gt 1 ]; then
  # -fork stops at the first crash (no -ignore_crashes).
  "$fuzzer" "$@" -fork="$jobs" "$work/corpus" "$work/seeds" || rc=$?
else
  "$fuzzer" "$@" "$work/corpus" "$work/seeds" || rc=$?
fi
after=$(ls "$work/artifacts" | wc -l)
if [ "$after" -ne "$before" ] || [ "$rc" -ne 0 ]; then
  echo "run_fuzz: FAILED (exit $rc); crash inputs in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2
  exit 1
fi
echo "run_fuzz: no crash in ${secs} s; corpus $(ls "$work/corpus" | wc -l) inputs" >&2
