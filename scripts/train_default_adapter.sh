#!/bin/sh
# Trains the sentinel adapter shipped for the default model (adapters/, docs/training.md) on the
# inference schedule: sequences of 1,024 tokens read exactly as inference reads them (4 attention
# sinks, a raw recent window, spans compressed as they leave it), the ratio uniform in [0.4, 0.8]
# and the span length in [8, 32] per sequence, loss = 0.5 cross-entropy + 0.5 KL divergence from
# the uncompressed base model. LoRA r=16 on the attention projections plus the <CL>/<CR> rows,
# continued from the adapter trained in the paper's layout (scripts/train_paper_adapter.sh).
# Data: WikiText-2 valid and 16 Gutenberg books. Held out, never trained on: wiki.test.raw
# (evaluation) and four books (validation and generation): pg11 Alice in Wonderland, pg35 The Time
# Machine, pg84 Frankenstein, pg1661 Sherlock Holmes.
#
#   scripts/train_default_adapter.sh [OUT] [extra sentinel train options, e.g. --resume or -t 1]
#
# OUT defaults to $SENTINEL_HOME/runs/ (~/.cache/sentinel), beside its checkpoint and log, which stay
# out of the repository; copy OUT to adapters/SmolLM2-135M-Instruct.sentinel.safetensors to ship it.
#
# ~100 s per update on one CPU core (float32); ~26 s with --dtype bfloat16 on a CPU with AMX
# (docs/training.md, "Training speed on the CPU"). Ctrl-C checkpoints; the same command plus --resume
# continues exactly, so the run may be split over many sittings (--stop-after N ends one cleanly).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
home=${SENTINEL_HOME:-$HOME/.cache/sentinel}
mkdir -p "$home/runs"
out=${1:-$home/runs/SmolLM2-135M-Instruct.sentinel.safetensors}
[ $# -gt 0 ] && shift
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
# From the repository root, as scripts/training_files.sh says why; OUT is read from where it was
# given, relative paths among the extra options from the root.
cd "$root"
data=${SENTINEL_SHARED_DATA:-../shared/data}
files=$(scripts/training_files.sh)  # held-out texts excluded
# shellcheck disable=SC2086  # $files is a list of paths without spaces
exec build/sentinel train $files \
  --method sentinel --layout stream --seq-len 1024 --ratio-range 0.4:0.8 --span-range 8:32 --sinks 4 \
  --distill 0.5 --init-adapter "adapters/SmolLM2-135M-Instruct.sentinel-0.5.safetensors" \
  --batch 1 --accum 4 --steps 200 --lr 2e-4 --sentinel-lr 1e-3 --warmup 5 --schedule cosine \
  --ratio 0.5 --val-data "$data/gutenberg/pg11_alice_in_wonderland.txt" --val-every 10 --val-tokens 4096 \
  --val-ctx 1024 --val-span 16 --save-every 2 --seed 0 -o "$out" "$@"
