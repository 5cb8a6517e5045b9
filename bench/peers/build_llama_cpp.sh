#!/usr/bin/env bash
# Builds llama.cpp tools from the source vendored in the PyPI sdist llama-cpp-python==0.3.36 (pinned
# by SHA-256): by default llama-bench, llama-perplexity and llama-server for side-by-side benchmarks;
# the fixture writers also ask for llama-quantize. Nothing is fetched from anywhere but PyPI. CPU
# only, native ISA (as a user would build it to compare).
#   bench/peers/build_llama_cpp.sh                   -> $SENTINEL_HOME/peers/llama.cpp/build/bin/llama-bench ...
#   JOBS=1 bench/peers/build_llama_cpp.sh llama-quantize   (only the named targets, one compile at a time)
# The unpacked source tree (convert_hf_to_gguf.py, gguf-py/) stays in $SENTINEL_HOME/peers/llama.cpp.
# Idempotent: the unpacked source and finished targets are reused. Prints the bin folder on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SENTINEL_HOME=${SENTINEL_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/sentinel}
PY="$SENTINEL_HOME/venv/bin/python"
SDIST="llama-cpp-python==0.3.36"
SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
DEST="$SENTINEL_HOME/peers/llama.cpp"
BIN="$DEST/build/bin"
MARKER="$DEST/.sdist-sha256"  # written last, so a half-copied tree is fetched again
JOBS=${JOBS:-$(nproc)}
if [ "$#" -gt 0 ]; then TARGETS=("$@"); else TARGETS=(llama-bench llama-perplexity llama-server); fi

done_already=1
for t in "${TARGETS[@]}"; do [ -x "$BIN/$t" ] || done_already=0; done
if [ "$done_already" = 1 ]; then echo "$BIN"; exit 0; fi

[ -x "$PY" ] || { echo "build_llama_cpp.sh: run scripts/setup.sh first (it creates $PY)" >&2; exit 1; }
if [ "$(cat "$MARKER" 2>/dev/null)" != "$SDIST_SHA256" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "peers: fetching the $SDIST sdist from PyPI" >&2
  "$PY" -m pip download -q --no-deps --no-binary :all: "$SDIST" -d "$tmp" >&2
  archive=$(ls "$tmp"/*.tar.gz)
  actual=$(sha256sum "$archive" | cut -d' ' -f1)
  if [ "$actual" != "$SDIST_SHA256" ]; then
    echo "build_llama_cpp.sh: $archive has SHA-256 $actual, expected $SDIST_SHA256" >&2
    exit 1
  fi
  tar -xzf "$archive" -C "$tmp"
  src=$(ls -d "$tmp"/llama_cpp_python-*/vendor/llama.cpp)
  rm -rf "$DEST" && mkdir -p "$(dirname "$DEST")" && cp -r "$src" "$DEST"
  echo "$SDIST_SHA256" >"$MARKER"
fi
echo "peers: building ${TARGETS[*]} with $JOBS jobs (several minutes on 2 cores)" >&2
cmake -S "$DEST" -B "$DEST/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
      -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$DEST/build" -j"$JOBS" --target "${TARGETS[@]}" >"$DEST/build.log" 2>&1 ||
  { tail -30 "$DEST/build.log" >&2; exit 1; }
echo "$BIN"
