#!/bin/sh
# Scores one sentinel adapter on the README's cells of the stream setting (windows read
# incrementally with eviction, docs/method.md section 6): WikiText-2 test and the held-out Frankenstein,
# first 8,192 tokens, windows of 1,024, 2,048 (WikiText-2 only) and 4,096, ratios 0.5, 0.75 and 0.875,
# perplexity and the mean KL divergence from the uncompressed base model. One `sentinel ppl --json`
# record per cell is appended to OUT; the training-free baselines of the same cells come from
# `sentinel eval lm --settings stream` (docs/results/lm_stream_baselines.jsonl).
#
#   scripts/eval_stream_cells.sh ADAPTER LAYOUT SPAN OUT [extra sentinel ppl options, e.g. -t 2]
#
# CELLS=validation scores the validation cells instead, the ones that choose adapters and readings:
# Alice (never trained on), first 8,192 tokens, windows of 1,024 and 4,096. RATIOS="0.5 0.75" narrows
# the ratios.
#
# ADAPTER is a path from the repository root (adapters/...) or an absolute one, or `none`: the
# same layout with untrained sentinel rows and no LoRA (the ablation of docs/results/README.md).
# LAYOUT is stream or heavy, SPAN the tokens per <CR> (--span). A layout that evicts by attention
# (heavy) is read 16 tokens per pass, as eval lm reads H2O (--h2o-chunk); the others in passes of
# 512, which gives the same numbers at any size. Cells already in OUT (same data, window, ratio,
# adapter bytes, layout, span, --stride-share and --older-rank) are skipped, so a killed run continues where it
# stopped and an adapter retrained at the same path is scored again.
set -eu
[ $# -ge 4 ] || { sed -n '2,20p' "$0"; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
adapter=$1 layout=$2 span=$3 out=$4
share= rank=  # --stride-share and --older-rank among the extra options: part of what a cell on file must match
prev=
for arg in "$@"; do
  [ "$prev" = --stride-share ] && share=$arg
  [ "$prev" = --older-rank ] && rank=$arg
  prev=$arg
done
case $out in /*) ;; *) out=$(pwd)/$out ;; esac
# Run from the repository root, so that the records name the data and adapter as a user's
# checkout does (../shared/data/..., adapters/...), not as this machine's absolute paths.
cd "$root"
data=${SENTINEL_SHARED_DATA:-../shared/data}
shift 4
case $layout in
  # ppl's share and rank when none is given (policy.h: default_stride_share, default_older_rank)
  heavy) chunk=16 default_share=0 default_rank=both ;;
  stream) chunk=512 default_share=0 default_rank=attention ;;
  *) echo "eval_stream_cells.sh: LAYOUT must be stream or heavy, got '$layout'" >&2; exit 2 ;;
esac
share=${share:-$default_share} rank=${rank:-$default_rank}
touch "$out"
if [ "$adapter" = none ]; then
  digest=none  # records without an adapter carry an empty adapter_sha256
else
  [ -f "$adapter" ] || { echo "eval_stream_cells.sh: adapter '$adapter' does not exist (a path from the repository root, or absolute)" >&2; exit 2; }
  digest=$(python3 -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$adapter")
fi
case ${CELLS:-test} in
  test) cells="wikitext-2-raw/wiki.test.raw:1024 wikitext-2-raw/wiki.test.raw:2048 wikitext-2-raw/wiki.test.raw:4096
               gutenberg/pg84_frankenstein.txt:1024 gutenberg/pg84_frankenstein.txt:4096" ;;
  validation) cells="gutenberg/pg11_alice_in_wonderland.txt:1024 gutenberg/pg11_alice_in_wonderland.txt:4096" ;;
  *) echo "eval_stream_cells.sh: CELLS must be test or validation, got '$CELLS'" >&2; exit 2 ;;
esac
for cell in $cells; do
  file=${cell%:*} ctx=${cell#*:}
  for ratio in ${RATIOS:-0.5 0.75 0.875}; do
    if python3 - "$out" "$file" "$ctx" "$ratio" "$digest" "$layout" "$span" "$share" "$rank" <<'PY'; then continue; fi
import json, sys
out, file, ctx, ratio, digest, layout, span, share, rank = sys.argv[1:]
for line in open(out):
    r = json.loads(line)
    if (r["data"].endswith(file) and r["ctx"] == int(ctx) and abs(r["ratio"] - float(ratio)) < 1e-9
            and (r.get("adapter_sha256") or "none") == digest and r.get("layout") == layout and r["span"] == int(span)
            and abs(r.get("stride_share", 0.0) - float(share)) < 1e-9
            and r.get("older_rank", "attention") == rank):
        sys.exit(0)
sys.exit(1)
PY
    echo "$(basename "$file") ctx $ctx ratio $ratio ($layout, span $span, stride share $share, older rank $rank)" >&2
    build/sentinel ppl --data "$data/$file" --max-tokens 8192 --ctx "$ctx" --stride "$ctx" \
      --compress sentinel --layout "$layout" --ratio "$ratio" --span "$span" --adapter "$adapter" --chunk "$chunk" \
      --kl-divergence --json "$@" >> "$out"
  done
done
