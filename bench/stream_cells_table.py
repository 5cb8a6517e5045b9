#!/usr/bin/env python3
"""The stream-setting cells of sentinel adapters beside the training-free baselines, as markdown.

Sentinel rows come from `sentinel ppl --json` records (scripts/eval_stream_cells.sh writes them),
baseline rows from `sentinel eval lm --settings stream` records (docs/results/lm_stream_baselines.jsonl).
Each cell is "ppl / KL" (mean per-token KL divergence from the uncompressed base model); a sentinel
cell is bold where it is below every baseline of the same cell, on that number.

    python3 bench/stream_cells_table.py --baselines docs/results/lm_stream_baselines.jsonl \\
        --sentinel "heavy, stage 3, L 48=docs/results/lm_stream_heavy.jsonl" [--sentinel NAME=FILE ...] \\
        [--variant "H2O by both=docs/results/lm_stream_h2o_both.jsonl"]

A --variant is a training-free method read another way (eval lm records, e.g. h2o with
--older-rank surprisal): shown in its own column after the baselines, outside the bold, with its
own count of the cells each sentinel run is below it in.
"""
import argparse
import json
import os

BASELINES = ("strided", "streaming", "h2o")
NAMES = {"strided": "strided", "streaming": "StreamingLLM", "h2o": "H2O"}


def cell_key(data, ctx, ratio):
    return os.path.basename(data), int(ctx), round(float(ratio), 4)


def read_baselines(paths):
    cells, full = {}, {}
    for path in paths:
        for line in open(path):
            r = json.loads(line)
            c = r["config"]
            if r["method"] == "full":
                full[(os.path.basename(c["data"]), int(c["ctx"]))] = r["ppl"]
            elif r["method"] in BASELINES:
                cells[cell_key(c["data"], c["ctx"], r["ratio"]) + (r["method"],)] = (r["ppl"], r["kl"])
    return cells, full


def read_variant(path):
    """eval lm records of one compressing method (a training-free method read another way)."""
    cells = {}
    for line in open(path):
        r = json.loads(line)
        if r["method"] != "full":
            c = r["config"]
            cells[cell_key(c["data"], c["ctx"], r["ratio"])] = (r["ppl"], r["kl"])
    return cells


def read_sentinel(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        out[cell_key(r["data"], r["ctx"], r["ratio"])] = (r["ppl"], r["reference"]["mean_kl_divergence"], r["achieved_ratio"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baselines", action="append", required=True, help="eval lm records (repeatable)")
    ap.add_argument("--sentinel", action="append", required=True, help="NAME=FILE of ppl --json records (repeatable)")
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=FILE of eval lm records of a training-free variant (repeatable)")
    a = ap.parse_args()
    base, full = read_baselines(a.baselines)
    runs = [(spec.split("=", 1)[0], read_sentinel(spec.split("=", 1)[1])) for spec in a.sentinel]
    variants = [(spec.split("=", 1)[0], read_variant(spec.split("=", 1)[1])) for spec in a.variant]
    keys = sorted({k for _, cells in runs for k in cells}, key=lambda k: (k[0] != "wiki.test.raw", k[0], k[1], k[2]))
    header = (["cell", "full"] + [f"sentinel, {name}" for name, _ in runs] + [NAMES[m] for m in BASELINES] +
              [name for name, _ in variants])
    print("| " + " | ".join(header) + " |")
    print("| --- " + "| ---: " * (len(header) - 1) + "|")
    wins = {name: [0, 0, 0] for name, _ in runs}  # ppl wins, KL wins, cells
    variant_wins = {(name, v): [0, 0, 0] for name, _ in runs for v, _ in variants}
    for k in keys:
        data, ctx, ratio = k
        label = f"{'WikiText-2' if data == 'wiki.test.raw' else os.path.splitext(data)[0].split('_', 1)[-1].title()}, {ctx:,}, r {ratio:g}"
        row = [label, f"{full.get((data, ctx), float('nan')):.2f}"]
        others = [base.get(k + (m,)) for m in BASELINES]
        for name, cells in runs:
            if k not in cells:
                row.append("")
                continue
            ppl, kl, achieved = cells[k]
            known = [o for o in others if o is not None]
            ppl_win = bool(known) and all(ppl < o[0] for o in known)
            kl_win = bool(known) and all(kl < o[1] for o in known)
            wins[name][0] += ppl_win
            wins[name][1] += kl_win
            wins[name][2] += 1
            for v, vcells in variants:
                if k in vcells:
                    counts = variant_wins[(name, v)]
                    counts[0] += ppl < vcells[k][0]
                    counts[1] += kl < vcells[k][1]
                    counts[2] += 1
            ppl_s = f"**{ppl:.2f}**" if ppl_win else f"{ppl:.2f}"
            kl_s = f"**{kl:.3f}**" if kl_win else f"{kl:.3f}"
            row.append(f"{ppl_s} / {kl_s}" + ("" if abs(achieved - ratio) < 5e-4 else f" ({achieved:.3f})"))
        row += ["" if o is None else f"{o[0]:.2f} / {o[1]:.3f}" for o in others]
        row += ["" if k not in vcells else f"{vcells[k][0]:.2f} / {vcells[k][1]:.3f}" for _, vcells in variants]
        print("| " + " | ".join(row) + " |")
    print()
    for name, (p, kl, n) in wins.items():
        print(f"sentinel, {name}: perplexity below every baseline in {p} of {n} cells, KL in {kl} of {n}.")
    for (name, v), (p, kl, n) in variant_wins.items():
        print(f"sentinel, {name}: perplexity below {v} in {p} of {n} cells, KL in {kl} of {n}.")


if __name__ == "__main__":
    main()
