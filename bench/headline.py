#!/usr/bin/env python3
"""The README's results table, plot and speed line, written from the records that hold them, never typed in.

The headline is the stream setting (windows read incrementally with eviction, docs/method.md): the
shipped heavy-layout adapter beside the strongest training-free rivals at the same budget, on
WikiText-2 test and the held-out Frankenstein. Each cell is perplexity / mean per-token KL
divergence from the uncompressed model, the best of each column in bold. The machine, revision and
threads of the records are printed under the table, so the table says where it came from. The speed
line is decode at the deepest context of the last `bench/bench_vs_llama_cpp.py` run.

    python3 bench/headline.py            # rewrite the README block and docs/results/headline.png
    python3 bench/headline.py --check    # exit 1 when the README block differs from the records

Records: `scripts/eval_stream_cells.sh` (the sentinel rows, `sentinel ppl --json`) and
`sentinel eval lm --settings stream` (the baselines), files named in RECORDS below; the commands
are in docs/evaluation.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stream_cells_table import read_baselines, read_sentinel, read_variant  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
RECORDS = {"sentinel": RESULTS / "lm_stream_heavy.jsonl", "baselines": RESULTS / "lm_stream_baselines.jsonl",
           "h2o_both": RESULTS / "lm_stream_h2o_both.jsonl", "tova": RESULTS / "lm_stream_tova.jsonl",
           "sepllm": RESULTS / "lm_stream_sepllm.jsonl"}
# bench/bench_vs_llama_cpp.py runs, one per kind of kernel table: AVX-512 (Intel Xeon) and AVX2 (AMD Zen 3).
SPEEDS = [RESULTS / "vs_llama_cpp_layouts.json", RESULTS / "vs_llama_cpp_avx2.json"]
README = ROOT / "README.md"
PLOT = RESULTS / "headline.png"
BLOCKS = {"headline": ("<!-- headline: written by bench/headline.py -->", "<!-- /headline -->"),
          "speed": ("<!-- speed: written by bench/headline.py -->", "<!-- /speed -->")}
# The README's columns: the shortest window on both texts, where compression bites hardest.
COLUMNS = [(text, 1024, ratio) for text in ("wiki.test.raw", "pg84_frankenstein.txt") for ratio in (0.5, 0.75, 0.875)]
ROWS = [("sentinel", "**Sentinel** (`--compress sentinel`: heavy layout, shipped adapter)"),
        ("h2o_both", "H2O ranked by attention + surprisal (training-free)"),
        ("h2o", "H2O"), ("tova", "TOVA"), ("sepllm", "SepLLM (4 sinks, separators, window)"),
        ("streaming", "StreamingLLM (4 sinks)"), ("strided", "strided")]


def text_name(data: str) -> str:
    return "WikiText-2" if data == "wiki.test.raw" else os.path.splitext(data)[0].split("_", 1)[-1].title()


def load():
    """{row: {cell: (ppl, kl)}}, {(data, ctx): full ppl}, and every record's environment."""
    base, full = read_baselines([RECORDS["baselines"]])
    methods = {m: {k[:3]: v for k, v in base.items() if k[3] == m} for m in ("h2o", "streaming", "strided")}
    methods["sentinel"] = {k: v[:2] for k, v in read_sentinel(RECORDS["sentinel"]).items()}
    for variant in ("h2o_both", "tova", "sepllm"):
        methods[variant] = read_variant(RECORDS[variant])
    environments = []
    for path in RECORDS.values():
        for line in open(path, encoding="utf-8"):
            r = json.loads(line)
            environments.append(r.get("environment", {}))
    return methods, full, environments


def said(items) -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def provenance(environments: list[dict]) -> str:
    def values(key):
        return sorted({str(e[key]) for e in environments if key in e}) or ["not recorded"]
    days = sorted({e["time"][:10] for e in environments if "time" in e})
    when = days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "not recorded"
    return (f"Measured {when} on {', '.join(values('cpu'))}, {'/'.join(values('threads'))} thread(s), "
            f"revision {', '.join(values('git_revision'))}; SmolLM2-135M-Instruct Q4_1, first 8,192 tokens.")


def table(methods, full, environments) -> str:
    head = ["method, same KV budget"] + [f"{text_name(d)} {c:,}, r {r:g}" for d, c, r in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "| --- " + "| ---: " * len(COLUMNS) + "|",
             "| no compression | " + " | ".join(f"{full[(d, c)]:.2f}" for d, c, _ in COLUMNS) + " |"]
    best = {cell: (min(methods[m][cell][0] for m, _ in ROWS), min(methods[m][cell][1] for m, _ in ROWS))
            for cell in COLUMNS}
    for key, label in ROWS:
        cells = []
        for cell in COLUMNS:
            ppl, kl = methods[key][cell]
            ppl_s = f"**{ppl:.2f}**" if ppl == best[cell][0] else f"{ppl:.2f}"
            kl_s = f"**{kl:.3f}**" if kl == best[cell][1] else f"{kl:.3f}"
            cells.append(f"{ppl_s} / {kl_s}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    every = sorted(methods["sentinel"])
    rivals = [m for m, _ in ROWS if m != "sentinel"]
    ppl_wins = sum(all(methods["sentinel"][k][0] < methods[m][k][0] for m in rivals if k in methods[m]) for k in every)
    kl_wins = sum(all(methods["sentinel"][k][1] < methods[m][k][1] for m in rivals if k in methods[m]) for k in every)
    windows = sorted({k[1] for k in every})
    ratios = sorted({k[2] for k in every})
    lines += ["", f"Over all {len(every)} cells (windows of {said(f'{w:,}' for w in windows)} tokens, ratios "
              f"{said(f'{r:g}' for r in ratios)}), the trained summaries have the lowest perplexity in {ppl_wins} and "
              f"the lowest KL in {kl_wins}.", provenance(environments)]
    return "\n".join(lines)


def speed(record: dict) -> str:
    """Decode at the deepest context, batch 1, beside llama.cpp, from one bench_vs_llama_cpp.py run."""
    cells = {(r["engine"], r["cell"]): r["tokens_per_s"]["median"] for r in record["rows"]}
    depth = max(r["depth"] for r in record["rows"] if "depth" in r)
    m = record["machine"]
    base = cells[("llama.cpp", f"full/{depth}")]
    compressed = sorted(c for e, c in cells if e == "sentinel" and c.endswith(f"/{depth}") and c != f"full/{depth}")
    parts = [f"Sentinel's full cache {cells[('sentinel', f'full/{depth}')]:.1f} "
             f"({cells[('sentinel', f'full/{depth}')] / base:.2f}x)"]
    parts += [f"{c.split('/')[0]} {cells[('sentinel', c)]:.1f} ({cells[('sentinel', c)] / base:.2f}x)" for c in compressed]
    kernels = record["sentinel_engine"]["weights"].rsplit(", ", 1)[-1]
    return (f"Decode at {depth:,} tokens of context, batch 1, same GGUF, {m['threads']} threads, on {m['cpu']} "
            f"({m['nproc']} cores, Sentinel on {kernels}; "
            f"{m['date'][:10]}, revision {m['git_rev']}{'+dirty' if m.get('git_dirty') else ''}): llama.cpp "
            f"{base:.1f} tok/s, {', '.join(parts)}. Prefill of 512 tokens: {cells[('sentinel', 'pp512')]:.0f} "
            f"against llama.cpp's {cells[('llama.cpp', 'pp512')]:.0f} tok/s.")


def plot(methods, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted(methods["sentinel"], key=lambda k: (k[0] != "wiki.test.raw", k[0], k[1], k[2]))
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(ROWS)
    for i, (key, label) in enumerate(ROWS):
        kls = [methods[key].get(c, (float("nan"), float("nan")))[1] for c in cells]
        ax.bar([x + i * width for x in range(len(cells))], kls, width, label=label.replace("**", ""))
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(cells))])
    ax.set_xticklabels([f"{text_name(d)}\n{c:,}, r {r:g}" for d, c, r in cells], fontsize=8)
    ax.set_ylabel("mean KL from uncompressed (lower: better)")
    ax.set_title("SmolLM2-135M, stream setting: what compression costs, per window and ratio")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only compare the README block with the records")
    a = ap.parse_args()
    methods, full, environments = load()
    texts = {"headline": table(methods, full, environments),
             "speed": "\n\n".join(speed(json.loads(p.read_text(encoding="utf-8"))) for p in SPEEDS)}
    readme = original = README.read_text(encoding="utf-8")
    for name, (begin, end) in BLOCKS.items():
        if begin not in readme or end not in readme:
            print(f"headline.py: README.md has no '{begin}' ... '{end}' block to write", file=sys.stderr)
            return 1
        start, stop = readme.index(begin), readme.index(end) + len(end)
        readme = readme[:start] + f"{begin}\n{texts[name]}\n{end}" + readme[stop:]
    if a.check:
        if readme != original:
            print("headline.py: README.md's results differ from the records they come from; run "
                  "python3 bench/headline.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(readme, encoding="utf-8")
    plot(methods, PLOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
