#!/usr/bin/env bash
# Builds a libFuzzer target (clang, ASan + UBSan) into build-fuzz/ and runs it for N seconds,
# seeded with the fixtures of its format (fuzz/README.md). Not part of the test suite.
#   scripts/fuzz.sh gguf 60            fuzz the GGUF reader + dequantization for 60 s
#   scripts/fuzz.sh safetensors 600    fuzz the safetensors reader for 10 min
#   scripts/fuzz.sh tokenizer 60       GGUF vocabularies and the BPE / SentencePiece encoders
#   scripts/fuzz.sh chat_template 60   the Jinja chat template interpreter, seeded with real templates
#   scripts/fuzz.sh state_file 60      the session state file reader (slot saves, --load-state)
#   scripts/fuzz.sh request 60         the server's request bodies: JSON, validation, chat template, tokens
# Extra arguments go to libFuzzer (e.g. -jobs=2). Inputs that add coverage accumulate in
# build-fuzz/corpus/<target>/ (fuzz/corpus/<target>/ keeps a minimized copy in git); a crash is saved as build-fuzz/artifacts/<target>-crash-* and
# replays with: build-fuzz/fuzz/fuzz_<target> <file>
set -euo pipefail

target=${1:-}
seconds=${2:-60}
case "$target" in
  gguf|safetensors|tokenizer|chat_template|state_file|request) ;;
  *) echo "usage: scripts/fuzz.sh gguf|safetensors|tokenizer|chat_template|state_file|request [seconds] [libFuzzer args...]" >&2
     exit 2 ;;
esac
shift $(( $# >= 2 ? 2 : 1 ))

root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-fuzz"
cmake -S "$root" -B "$build" -DSENTINEL_BUILD_FUZZERS=ON -DSENTINEL_WITH_TORCH=OFF -DSENTINEL_BUILD_TESTS=OFF \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" --target "fuzz_$target" -j2

seeds="$build/seeds/$target"
corpus="$build/corpus/$target"
mkdir -p "$seeds" "$corpus" "$build/artifacts"
limits=(-max_len=16384)
case "$target" in
  gguf) find "$root/tests/data/io" -name '*.gguf' -exec cp {} "$seeds/" \; ;;
  safetensors) find "$root/tests/data/io" -name '*.safetensors' -exec cp {} "$seeds/" \; ;;
  tokenizer) ;;  # the target's first byte picks a GGUF vocabulary or text for fixed tokenizers
  chat_template)
    cp "$root"/tests/data/chat/templates/*.jinja "$seeds/"
    limits=(-max_len=20000 -timeout=10) ;;  # every render must stop at its bounds: a hang is a bug
  state_file) python3 "$root/fuzz/make_state_seeds.py" "$seeds" ;;
  request) limits=(-max_len=16384 -timeout=10) ;;  # fuzz/corpus/request/ holds hand-written bodies
esac
dict=()
[ -f "$root/fuzz/$target.dict" ] && dict=(-dict="$root/fuzz/$target.dict")
# The committed corpus (fuzz/corpus/<target>/: earlier runs' inputs, minimized) seeds a fresh machine.
kept=()
[ -d "$root/fuzz/corpus/$target" ] && kept=("$root/fuzz/corpus/$target")

exec "$build/fuzz/fuzz_$target" "$corpus" "$seeds" "${kept[@]}" \
  -max_total_time="$seconds" -print_final_stats=1 "${limits[@]}" "${dict[@]}" \
  -artifact_prefix="$build/artifacts/$target-" "$@"
