#!/usr/bin/env python3
"""Training throughput of `sentinel train` in one process and data parallel under torchrun (Gloo),
on the default model: tokens/s of the stream layout with distillation, the shipped adapter's recipe
at a shorter sequence. Three ways to spend the same cores, each reading the same global batch:

  1 process  x 1 thread,  --batch B        (the baseline: one core)
  1 process  x N threads, --batch B        (intra-op threads)
  N processes x 1 thread, --batch B/N each (data parallel, gradients all-reduced by Gloo)

tokens/s counts every element the model reads (sentinels included) over all ranks, from the run's
log, the first update left out as warm-up. A measurement, not a test.

  python3 bench/bench_train_scaling.py --out docs/results/train_scaling.jsonl
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine_info  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.valid.raw"


def run(cmd: list[str], env: dict) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stderr[-2000:]}")


def measure(sentinel: str, procs: int, threads: int, batch: int, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"p{procs}t{threads}.st"
    train = [sentinel, "train", str(DATA), "--layout", "stream", "--seq-len", str(args.seq_len), "--distill", "0.5",
             "--batch", str(batch), "--accum", "1", "--steps", str(args.steps), "--max-tokens", str(args.max_tokens),
             "--lora-dropout", "0", "-t", str(threads), "--seed", "0", "-o", str(out)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs), "--master-port",
               str(args.port), "--no-python", *train]
    else:
        cmd = train
    run(cmd, env)
    log = [json.loads(line) for line in Path(f"{out}.log.jsonl").read_text().splitlines() if '"loss"' in line]
    steady = log[1:]  # update 1 warms up allocators and caches
    seconds = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(log, steady)]
    tokens = [r["tokens"] for r in steady]
    rates = [t / s for t, s in zip(tokens, seconds)]
    return {"processes": procs, "threads_per_process": threads, "batch_per_process": batch,
            "global_batch": procs * batch, "seq_len": args.seq_len, "updates_timed": len(steady),
            "tokens_per_s_median": statistics.median(rates), "tokens_per_s_min": min(rates),
            "tokens_per_s_max": max(rates), "seconds_per_update_median": statistics.median(seconds),
            "losses": [r["loss"] for r in log]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentinel", default=str(ROOT / "build" / "sentinel"))
    p.add_argument("--procs", type=int, default=2, help="N: processes of the data-parallel run, threads of the other")
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--steps", type=int, default=5, help="updates per run (the first is not timed)")
    p.add_argument("--max-tokens", type=int, default=40000)
    p.add_argument("--port", type=int, default=29671)
    p.add_argument("--out", type=Path, help="JSON lines, one per configuration")
    args = p.parse_args()
    n = args.procs
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for procs, threads, batch in [(1, 1, n), (1, n, n), (n, 1, 1)]:
            row = measure(args.sentinel, procs, threads, batch, args, Path(tmp))
            row["machine"] = machine_info(threads)
            rows.append(row)
            print(f"{procs} process(es) x {threads} thread(s), batch {batch} each: "
                  f"{row['tokens_per_s_median']:.0f} tok/s (min {row['tokens_per_s_min']:.0f}, "
                  f"max {row['tokens_per_s_max']:.0f}), {row['seconds_per_update_median']:.2f} s/update", flush=True)
    base = rows[0]["tokens_per_s_median"]
    for row in rows:
        row["speedup_vs_one_thread"] = row["tokens_per_s_median"] / base
    print(f"same losses in all three runs: {all(r['losses'] == rows[0]['losses'] for r in rows)} "
          f"(max |diff| {max(abs(a - b) for r in rows for a, b in zip(r['losses'], rows[0]['losses'])):.1e})")
    if args.out:
        with args.out.open("w") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
