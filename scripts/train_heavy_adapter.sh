#!/bin/sh
# Trains the sentinel adapter of the heavy layout (summaries beside H2O's heavy hitters,
# docs/training.md), shipped as adapters/SmolLM2-135M-Instruct.sentinel-heavy.safetensors and used
# by `--compress sentinel --layout heavy` on the default model. Each 1,024-token sequence is read by
# the model being trained, 16 tokens per pass, to find which tokens H2O's eviction keeps, then
# trained on the replay of that reading in one masked pass. The ratio is uniform in [0.4, 0.8] and
# the span in [8, 32] per sequence; the loss is the KL divergence from the uncompressed base model
# alone; LoRA r=16 acts at the <CL>/<CR> tokens only, so ordinary tokens compute as the base model.
# Continued from the gated stream-layout adapter (adapters/...sentinel-gated.safetensors).
# Data: scripts/training_files.sh (held-out texts excluded).
#
#   scripts/train_heavy_adapter.sh [OUT] [extra sentinel train options, e.g. --resume or -t 2]
#
# OUT defaults to $SENTINEL_HOME/runs/ (~/.cache/sentinel), beside its checkpoint and log. ~75 s
# per update on one core of an AVX-512 Xeon (the read costs about as much as the step), ~100 min
# for the 80 updates. Ctrl-C checkpoints; the same command plus --resume continues exactly.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${SENTINEL_SHARED_DATA:-$root/../shared/data}
home=${SENTINEL_HOME:-$HOME/.cache/sentinel}
mkdir -p "$home/runs"
out=${1:-$home/runs/SmolLM2-135M-Instruct.sentinel-heavy.safetensors}
[ $# -gt 0 ] && shift
files=$("$root/scripts/training_files.sh")  # held-out texts excluded
# shellcheck disable=SC2086  # $files is a list of paths without spaces
exec "$root/build/sentinel" train $files \
  --method sentinel --layout heavy --seq-len 1024 --ratio-range 0.4:0.8 --span-range 8:32 --sinks 4 \
  --distill 1.0 --lora-positions sentinels \
  --init-adapter "$root/adapters/SmolLM2-135M-Instruct.sentinel-gated.safetensors" \
  --batch 1 --accum 4 --steps 80 --lr 2e-4 --sentinel-lr 1e-3 --warmup 5 --schedule cosine \
  --ratio 0.5 --val-data "$data/gutenberg/pg11_alice_in_wonderland.txt" --val-every 20 --val-tokens 4096 \
  --val-ctx 1024 --val-span 16 --save-every 2 --seed 4 -o "$out" "$@"
