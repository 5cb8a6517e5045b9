#!/bin/sh
# Trains the sentinel adapter of the heavy layout (summaries beside H2O's heavy hitters,
# docs/training.md), shipped as adapters/SmolLM2-135M-Instruct.sentinel-heavy.safetensors and used
# by `--compress sentinel --layout heavy` on the default model. Each 1,024-token sequence is read by
# the model being trained, 16 tokens per pass, to find which tokens H2O's eviction keeps, then
# trained on the replay of that reading in one masked pass. The ratio is uniform in [0.4, 0.8] per
# sequence; the loss is the KL divergence from the uncompressed base model alone; LoRA r=16 acts at
# the <CL>/<CR> tokens only, so ordinary tokens compute as the base model. Two stages of 80 updates
# of 4 sequences (328k tokens each):
#   1. from the gated stream-layout adapter (adapters/...sentinel-gated.safetensors), spans of 8-32,
#      the training texts of scripts/training_files.sh (held-out texts excluded), one process;
#   2. from stage 1, spans of 16-48, WikiText-2's valid split given three times over (21% of the
#      tokens instead of 8%), two data-parallel processes (torchrun) of 2 sequences each.
#
#   scripts/train_heavy_adapter.sh [OUT] [extra sentinel train options, e.g. --resume]
#
# OUT defaults to $SENTINEL_HOME/runs/ (~/.cache/sentinel), beside its checkpoint and log; stage 1
# writes OUT.stage1.safetensors and is skipped once that file exists. On an AVX-512 Xeon with 2
# cores: stage 1 ~75 s per update on one core (the read costs about as much as the step), ~100 min;
# stage 2 ~37 s per update on both, ~50 min. Ctrl-C checkpoints; the same command plus --resume
# continues exactly.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
data=${SENTINEL_SHARED_DATA:-$root/../shared/data}
home=${SENTINEL_HOME:-$HOME/.cache/sentinel}
mkdir -p "$home/runs"
out=${1:-$home/runs/SmolLM2-135M-Instruct.sentinel-heavy.safetensors}
[ $# -gt 0 ] && shift
stage1=${out%.safetensors}.stage1.safetensors
files=$("$root/scripts/training_files.sh")  # held-out texts excluded
wiki="$data/wikitext-2-raw/wiki.valid.raw"
common="--method sentinel --layout heavy --seq-len 1024 --ratio-range 0.4:0.8 --sinks 4 --distill 1.0
  --lora-positions sentinels --steps 80 --lr 2e-4 --sentinel-lr 1e-3 --warmup 5 --schedule cosine --ratio 0.5
  --val-data $data/gutenberg/pg11_alice_in_wonderland.txt --val-every 20 --val-tokens 4096 --val-ctx 1024
  --save-every 2 -t 1"
# shellcheck disable=SC2086  # $files and $common are lists of words without spaces
if [ ! -f "$stage1" ]; then
  "$root/build/sentinel" train $files $common --span-range 8:32 --val-span 16 \
    --init-adapter "$root/adapters/SmolLM2-135M-Instruct.sentinel-gated.safetensors" \
    --batch 1 --accum 4 --seed 4 -o "$stage1" "$@"
fi
# shellcheck disable=SC2086
exec "$home/venv/bin/torchrun" --nproc-per-node 2 --no-python "$root/build/sentinel" train $files "$wiki" "$wiki" \
  $common --span-range 16:48 --val-span 32 --init-adapter "$stage1" --batch 1 --accum 2 --seed 5 -o "$out" "$@"
