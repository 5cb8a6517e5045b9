#!/usr/bin/env python3
"""What calling Sentinel from Python costs: decode speed of sentinel_kv against the `sentinel` CLI
on the same model, prompt, threads and options (target: at most 5% slower at batch 1), and the
extra time per forward pass of an eviction rule written in Python (sentinel_kv.H2O) against the
built-in one it equals (compress="h2o").

    python bench/bench_python.py                       # default model, 2 threads, 5 repeats
    python bench/bench_python.py --out docs/results/python_overhead.json

Each repeat runs the CLI and the package back to back (interleaved, so drift hits both alike);
medians and spreads over the repeats. The package must be importable (scripts/setup.sh installs it,
or PYTHONPATH=build/python)."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_TEXT, MODEL_FILE, ROOT, default_model_dir, machine_info, spread

import sentinel_kv as skv


def cli_decode(sentinel: str, model: str, prompt: str, tokens: int, threads: int, compress: list[str]) -> float:
    out = subprocess.run([sentinel, "generate", "-m", model, "--prompt", prompt, "-n", str(tokens), "--ignore-eos",
                          "-t", str(threads), "--json", *compress], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["decode_tokens_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentinel", default=str(ROOT / "build" / "sentinel"))
    p.add_argument("--model", default=str(default_model_dir() / MODEL_FILE))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--prompt-chars", type=int, default=2000, help="prompt: the start of WikiText-2 test")
    p.add_argument("--policy-tokens", type=int, default=512, help="tokens read one per pass for the policy cost")
    p.add_argument("--out", help="write the record (JSON) here")
    a = p.parse_args()

    prompt = DEFAULT_TEXT.read_text(encoding="utf-8")[: a.prompt_chars]
    model = skv.load(a.model, threads=a.threads)
    cells = {}
    for name, options in [("full", {}), ("h2o 0.5", {"compress": "h2o", "ratio": 0.5}),
                          ("sentinel 0.5", {"compress": "sentinel", "ratio": 0.5})]:
        flags = [f"--{k}={v}" for k, v in options.items()]
        cli, python = [], []
        for _ in range(a.repeats):
            cli.append(cli_decode(a.sentinel, a.model, prompt, a.decode_tokens, a.threads, flags))
            out = model.generate(prompt, max_tokens=a.decode_tokens, ignore_eos=True, **options)
            python.append(out.decode_tokens_per_second)
        cells[name] = {"cli_tok_s": spread(cli), "python_tok_s": spread(python),
                       "python_vs_cli": spread(python)["median"] / spread(cli)["median"]}
        print(f"decode {name:13s} CLI {cells[name]['cli_tok_s']['median']:7.1f} tok/s   Python "
              f"{cells[name]['python_tok_s']['median']:7.1f} tok/s   ratio {cells[name]['python_vs_cli']:.3f}")

    # A rule written in Python against its built-in twin, one token per pass: the scorer and the
    # attention observer run after every pass.
    ids = model.tokenizer.encode(DEFAULT_TEXT.read_text(encoding="utf-8")[:20000])[: a.policy_tokens]
    builtin, python = [], []
    for _ in range(a.repeats):
        start = time.perf_counter()
        b = model.score(ids, chunk=1, compress="h2o", ratio=0.5)
        builtin.append(time.perf_counter() - start)
        start = time.perf_counter()
        q = model.score(ids, chunk=1, compression=skv.H2O(ratio=0.5))
        python.append(time.perf_counter() - start)
        assert abs(q.ppl - b.ppl) <= 1e-6 * b.ppl, (q.ppl, b.ppl)
    per_pass_ms = 1000 * (spread(python)["median"] - spread(builtin)["median"]) / len(ids)
    policy = {"tokens": len(ids), "builtin_s": spread(builtin), "python_s": spread(python),
              "extra_ms_per_pass": per_pass_ms}
    print(f"H2O one token per pass over {len(ids)} tokens: built-in {policy['builtin_s']['median']:.2f} s, "
          f"Python {policy['python_s']['median']:.2f} s: {per_pass_ms:.3f} ms more per pass")

    record = {"benchmark": "python_overhead", "machine": machine_info(a.threads), "model": Path(a.model).name,
              "backend": model.backend, "decode_tokens": a.decode_tokens, "repeats": a.repeats,
              "decode": cells, "python_policy": policy}
    if a.out:
        Path(a.out).write_text(json.dumps(record, indent=1) + "\n")
    else:
        json.dump(record, sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
