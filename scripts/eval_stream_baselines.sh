#!/bin/sh
# Scores the training-free methods on the README's cells of the stream setting, the cells
# scripts/eval_stream_cells.sh scores a sentinel adapter on: WikiText-2 test and the held-out
# Frankenstein, first 8,192 tokens, windows of 1,024, 2,048 (WikiText-2 only) and 4,096, ratios
# 0.5, 0.75 and 0.875. One `sentinel eval lm --settings stream` record per cell and method, each
# method in its file of docs/results/ (bench/headline.py reads them):
#   lm_stream_baselines.jsonl  full cache, strided, StreamingLLM, H2O (the published rule)
#   lm_stream_h2o_both.jsonl   H2O ranked by attention and surprisal (--older-rank both)
#   lm_stream_tova.jsonl       TOVA
#   lm_stream_sepllm.jsonl     SepLLM
# Cells on file are skipped (--resume), so a killed run continues and a new ratio adds its cells.
#
#   scripts/eval_stream_baselines.sh [extra sentinel eval lm options, e.g. -t 2]
#
# RATIOS="0.875" narrows the ratios. About 10 minutes per method and ratio on one core.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"  # records name the data as a user's checkout does (../shared/data/...)
data=${SENTINEL_SHARED_DATA:-../shared/data}
out=docs/results
ratios=$(echo "${RATIOS:-0.5 0.75 0.875}" | tr ' ' ',')
for cell in wikitext-2-raw/wiki.test.raw:1024 wikitext-2-raw/wiki.test.raw:2048 wikitext-2-raw/wiki.test.raw:4096 \
            gutenberg/pg84_frankenstein.txt:1024 gutenberg/pg84_frankenstein.txt:4096; do
  file=${cell%:*} ctx=${cell#*:}
  # --layout stream --span 16 change no number of these methods (they keep no <CR>s), but every option is part
  # of a record's key: they are the grid's defaults of the records on file, before heavy became the default.
  grid="-t 1 --settings stream --ratios $ratios -d $data/$file --ctx $ctx --max-tokens 8192 --resume --layout stream --span 16"
  build/sentinel eval lm $grid --methods full,strided,streaming,h2o -o $out/lm_stream_baselines.jsonl "$@"
  build/sentinel eval lm $grid --methods h2o --older-rank both -o $out/lm_stream_h2o_both.jsonl "$@"
  build/sentinel eval lm $grid --methods tova -o $out/lm_stream_tova.jsonl "$@"
  build/sentinel eval lm $grid --methods sepllm -o $out/lm_stream_sepllm.jsonl "$@"
done
