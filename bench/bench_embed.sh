#!/usr/bin/env bash
# bench_embed: speed of the USE-lite text encoder (`ievo embed`) on MovieLens-100K item texts.
#
#   bench/bench_embed.sh [BUILD_DIR]        (default: build; the weights must be fetched, see below)
#
# Inputs, from u.item (Latin-1, pipe-separated, converted to UTF-8):
#   titles          field 2, e.g. "Toy Story (1995)"                                  1682 texts
#   titles+genres   title, then the names of its genre flags (fields 6..24, u.genre),
#                   e.g. "Toy Story (1995). Animation, Children's, Comedy"           1682 texts
# For each input and batch size 1, 8, 32, 128 it runs `ievo embed --stats` 3 times on one thread
# and prints the median texts/s and tokens/s of the encoder itself (`--stats` times only the encode
# calls: not loading, reading or printing JSON), plus the scalar reference backend once on the
# first 100 titles. Prints the machine, the build and the input first. Never fails because the
# machine is slow: it exits non-zero only when it cannot run at all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
bin="$build/ievo"
[ -x "$bin" ] || { echo "bench_embed: no $bin (build first: scripts/build.sh, or pass the build dir)" >&2; exit 1; }
shared=${IEVO_SHARED:-$root/../shared}
item="$shared/data/ml-100k/u.item"
genre="$shared/data/ml-100k/u.genre"
[ -f "$item" ] && [ -f "$genre" ] || { echo "bench_embed: no $item / $genre (set IEVO_SHARED)" >&2; exit 1; }
wdir=${IEVO_CACHE:-$HOME/.cache/ievo}/use-lite
"$root/scripts/fetch-use-lite.sh" "$wdir" >&2 || { echo "bench_embed: cannot get the weights" >&2; exit 1; }
export OMP_NUM_THREADS=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
iconv -f latin1 -t utf-8 "$item" | cut -d'|' -f2 >"$tmp/titles"
iconv -f latin1 -t utf-8 "$item" | awk -F'|' -v gf="$genre" '
  BEGIN { while ((getline line < gf) > 0) { n = split(line, p, "|"); if (n == 2) name[p[2]] = p[1] } }
  { g = ""; for (i = 6; i <= 24; i++) if ($i == 1) g = g (g == "" ? "" : ", ") name[i - 6]; print $2 ". " g }' \
  >"$tmp/titles+genres"

tokens_of() { "$bin" embed --tokenize --text-encoder "$wdir" <"$1" | sed -n 's/.*"tokens": \([0-9]*\),.*/\1/p' |
  awk '{ n++; t += ($1 < 128 ? $1 : 128); if ($1 > m) m = $1 } END { printf "%d texts, %d tokens (mean %.1f, max %d)", n, t, t / n, m }'; }

echo "== bench_embed: Universal Sentence Encoder lite, ievo embed"
echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(getconf _NPROCESSORS_ONLN) vCPU, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); flags: $(grep -o -w -E 'avx512f|avx512_bf16|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "build:   $build ($(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$build/CMakeCache.txt"), sanitize $(sed -n 's/^IEVO_SANITIZE:BOOL=//p' "$build/CMakeCache.txt"), $(cd "$root" && git describe --always --dirty 2>/dev/null || echo 'no git')), oneDNN $(dpkg-query -W -f='${Version}' libdnnl-dev 2>/dev/null || echo '?'), OMP_NUM_THREADS=1"
echo "weights: $wdir/use_lite.f32 (sha256 checked at load)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15-min load average at start: other processes share these cores)"
for input in titles titles+genres; do
  echo "input:   $input of $item: $(tokens_of "$tmp/$input"); e.g. \"$(sed -n 1p "$tmp/$input")\""
done
echo

# one run -> "texts/s tokens/s" from --stats
rate() { "$bin" embed --text-encoder "$wdir" --stats "$@" 2>&1 >/dev/null |
  sed -n 's/.*): \([0-9.]*\) texts\/s, \([0-9.]*\) tokens\/s.*/\1 \2/p'; }
median3() { sort -n -k1,1 | sed -n 2p; }

printf "%-14s %-8s %6s %12s %12s %12s\n" input backend batch texts/s tokens/s ms/call
for input in titles titles+genres; do
  for b in 1 8 32 128; do
    r=$(for i in 1 2 3; do rate --batch "$b" <"$tmp/$input"; done | median3)
    set -- $r
    printf "%-14s %-8s %6d %12.1f %12.1f %12.2f\n" "$input" dnnl "$b" "$1" "$2" "$(echo "$b $1" | awk '{print 1000 * $1 / $2}')"
  done
done
head -100 "$tmp/titles" >"$tmp/titles100"
set -- $(rate --backend scalar --batch 32 <"$tmp/titles100")
printf "%-14s %-8s %6d %12.1f %12.1f %12s   (first 100 titles, one run)\n" titles scalar 32 "$1" "$2" "-"
echo
echo "texts/s and tokens/s: the encode calls only (median of 3 runs); tokens = ids the encoder reads (<= 128 a text);"
echo "ms/call = batch / (texts/s). This VM's figures drift 30-40 % from run to run (platform notes)."
