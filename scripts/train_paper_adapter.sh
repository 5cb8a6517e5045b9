#!/bin/sh
# Trains the paper-layout sentinel adapter (adapters/, docs/training.md): LoRA r=16
# on the attention projections plus the <CL>/<CR> rows, word spans at ratio 0.5, 120 updates of
# 12 blocks of 256 (368,640 elements, ~11% of one epoch) on WikiText-2 valid and 16 Gutenberg books.
# Held out, never trained on: wiki.test.raw (evaluation) and four books (validation and generation):
# pg11 Alice in Wonderland, pg35 The Time Machine, pg84 Frankenstein, pg1661 Sherlock Holmes.
#
#   scripts/train_paper_adapter.sh [OUT] [extra sentinel train options, e.g. --resume or -t 1]
#   scripts/train_paper_adapter.sh OUT --method local      # the paper's baselines, same recipe
#   scripts/train_paper_adapter.sh OUT --method scattered  # (docs/training.md, "The paper's baselines, fine-tuned")
#
# ~50 minutes on 2 quiet CPU cores (float32). Ctrl-C checkpoints; the same command plus --resume continues.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/adapters/SmolLM2-135M-Instruct.sentinel-0.5.safetensors}
[ $# -gt 0 ] && shift
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
# From the repository root, as scripts/training_files.sh says why; OUT is read from where it was
# given, relative paths among the extra options from the root.
cd "$root"
data=${SENTINEL_SHARED_DATA:-../shared/data}
files=$(scripts/training_files.sh)  # held-out texts excluded
method="--method sentinel"
for arg in "$@"; do
  case $arg in --method|--method=*) method="" ;; esac  # the caller names the method
done
# shellcheck disable=SC2086  # $files and $method are lists of words without spaces
exec build/sentinel train $files \
  $method --layout blocks --ratio 0.5 --rows paragraph --steps 120 --lr 3e-4 --warmup 10 --schedule cosine \
  --val-data "$data/gutenberg/pg11_alice_in_wonderland.txt" --val-every 20 --val-tokens 4096 --val-ctx 512 \
  --save-every 10 --seed 0 -o "$out" "$@"
