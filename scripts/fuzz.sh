#!/usr/bin/env bash
# Builds a libFuzzer target (clang, ASan + UBSan) into build-fuzz/ and runs it for N seconds,
# seeded with the reader fixtures in tests/data/io/. Not part of the test suite.
#   scripts/fuzz.sh gguf 60            fuzz the GGUF reader + dequantization for 60 s
#   scripts/fuzz.sh safetensors 600    fuzz the safetensors reader for 10 min
# Extra arguments go to libFuzzer (e.g. -jobs=2). Inputs that add coverage accumulate in
# build-fuzz/corpus/<target>/; a crash is saved as build-fuzz/artifacts/<target>-crash-* and
# replays with: build-fuzz/fuzz/fuzz_<target> <file>
set -euo pipefail

target=${1:-}
seconds=${2:-60}
if [[ "$target" != gguf && "$target" != safetensors ]]; then
  echo "usage: scripts/fuzz.sh gguf|safetensors [seconds] [libFuzzer args...]" >&2
  exit 2
fi
shift $(( $# >= 2 ? 2 : 1 ))

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
cmake -S "$root" -B "$build" -DSENTINEL_BUILD_FUZZERS=ON -DSENTINEL_WITH_TORCH=OFF -DSENTINEL_BUILD_TESTS=OFF \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "fuzz_$target" -j2

case "$target" in
  gguf) pattern='*.gguf' ;;
  safetensors) pattern='*.safetensors' ;;
esac
seeds="$build/seeds/$target"
corpus="$build/corpus/$target"
mkdir -p "$seeds" "$corpus" "$build/artifacts"
find "$root/tests/data/io" -name "$pattern" -exec cp {} "$seeds/" \;

exec "$build/fuzz/fuzz_$target" "$corpus" "$seeds" \
  -max_total_time="$seconds" -print_final_stats=1 -max_len=16384 \
  -dict="$root/fuzz/$target.dict" -artifact_prefix="$build/artifacts/$target-" "$@"
