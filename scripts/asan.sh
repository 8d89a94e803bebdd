#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into
# build-asan/ (leaving build/Release alone) and runs the native tests and the
# simulation slice against it.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build-asan
napi_inc=$(node -p "require('node-addon-api').include_dir")
node_inc="$(dirname "$(dirname "$(node -p process.execPath)")")/include/node"
[ -d "$node_inc" ] || node_inc=/usr/include/node
shopt -s nullglob
srcs=(native/addon/*.cc native/raft/*.cc native/wal/*.cc)
flags="-std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -fPIC -shared -Wall -Wno-unused-parameter"
echo "# building build-asan/keelson.node"
g++ $flags -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_DEPRECATED -I"$node_inc" -I"$napi_inc" -Inative "${srcs[@]}" -o build-asan/keelson.node
export KEELSON_ADDON="$PWD/build-asan/keelson.node"
export LD_PRELOAD="$(g++ -print-file-name=libasan.so):$(g++ -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export KEELSON_SIM_SLICE="${KEELSON_SIM_SLICE:-asan}"
node scripts/run-tests.mjs test/native test/sim
