#!/bin/sh
# Prints the training text of the shipped adapters, one path per line: WikiText-2 valid and the
# Gutenberg books of ../shared/data, less those held out. Never trained on: wiki.test.raw
# (evaluation) and four books (validation and generation): pg11 Alice in Wonderland, pg35 The
# Time Machine, pg84 Frankenstein, pg1661 Sherlock Holmes. The paths are from the repository root
# (../shared/data/...), where the training scripts run, so that an adapter's metadata names its
# data and starting adapter as any checkout does, not by the training machine's absolute paths;
# $SENTINEL_SHARED_DATA moves the folder.
set -eu
cd "$(dirname "$0")/.."
data=${SENTINEL_SHARED_DATA:-../shared/data}
echo "$data/wikitext-2-raw/wiki.valid.raw"
for book in "$data"/gutenberg/*.txt; do
  case $(basename "$book") in
    pg11_*|pg35_*|pg84_*|pg1661_*) ;;  # held out
    *) echo "$book" ;;
  esac
done
