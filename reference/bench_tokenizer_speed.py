#!/usr/bin/env python3
"""Encoding speed of the reference `tokenizers` library on WikiText-2 test, one thread: the peer
number for tests/slow/base/bench_tokenizer_speed.cpp (docs/tokenizer.md has both).

Run:
    python3 reference/make_tokenizer_json.py \
        ~/.cache/sentinel/models/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-tokenizer.json
    RAYON_NUM_THREADS=1 python3 reference/bench_tokenizer_speed.py /tmp/smollm2-tokenizer.json \
        ../shared/data/wikitext-2-raw/wiki.test.raw
Not a test; a single encode() of one string does not use threads anyway, the variable makes sure.
"""
import statistics
import sys
import time

from tokenizers import Tokenizer


def main():
    tokenizer_path, text_path = sys.argv[1], sys.argv[2]
    with open(text_path, encoding="utf-8") as src:
        text = src.read()
    start = time.perf_counter()
    tokenizer = Tokenizer.from_file(tokenizer_path)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    n_tokens = len(tokenizer.encode(text, add_special_tokens=False).ids)
    cold_s = time.perf_counter() - start
    warm = []
    for _ in range(7):
        start = time.perf_counter()
        tokenizer.encode(text, add_special_tokens=False)
        warm.append(time.perf_counter() - start)
    median = statistics.median(warm)
    # The same text as 4358 separate encode() calls (line by line, each keeping its newline).
    lines = text.split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    by_line = []
    for _ in range(7):
        start = time.perf_counter()
        for line in lines:
            tokenizer.encode(line, add_special_tokens=False)
        by_line.append(time.perf_counter() - start)
    print(f"tokenizer load from tokenizer.json: {load_s:.3f} s")
    print(f"{text_path}: {len(text.encode())} bytes, {n_tokens} tokens")
    print(f"cold (first encode): {cold_s:.3f} s = {n_tokens / cold_s:.0f} tokens/s")
    print(f"warm (median of 7, min {min(warm):.3f} max {max(warm):.3f}): {median:.3f} s = {n_tokens / median:.0f} tokens/s")
    print(f"line by line ({len(lines)} calls, median of 7): {statistics.median(by_line):.3f} s = "
          f"{n_tokens / statistics.median(by_line):.0f} tokens/s")


if __name__ == "__main__":
    main()
