#!/usr/bin/env python3
"""Compression benchmark: KV bytes and decode tokens/s at long context, per method and ratio.

For each method x ratio (and the full cache once), `sentinel generate --json` prefills the same
prompt of exactly N tokens (a prefix of wikitext-2 test) under `--compress METHOD --ratio R`, then
decodes D tokens greedily. Recorded per run: decode tokens/s, the KV bytes held at the end, the peak
KV bytes, the entries retained and the achieved ratio (1 - entries / tokens seen). Configurations
run round-robin, so that load drift on a shared machine hits every method alike. Results go to
bench/out/ as JSON lines; a markdown table (medians, min-max over repeats) goes to stdout.

This is a measurement, not a test: nothing here asserts on a timing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_TEXT, MODEL_FILE, ROOT, default_model_dir, load1, machine_info, make_prompt, spread

METHODS = ["sentinel", "local", "scattered", "strided", "streaming", "h2o"]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentinel", default=str(ROOT / "build" / "sentinel"), help="path to the sentinel binary")
    p.add_argument("--model-dir", default=str(default_model_dir()), help=f"folder holding {MODEL_FILE}")
    p.add_argument("--text", default=str(DEFAULT_TEXT), help="text the prompt is cut from")
    p.add_argument("--context", type=int, default=4096, help="prompt length in tokens")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated compression methods")
    p.add_argument("--ratios", default="0.5,0.75", help="comma-separated ratios (fraction of the context removed)")
    p.add_argument("--span", type=int, default=16, help="sentinel span length")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=3, help="runs per configuration")
    p.add_argument("--decode-tokens", type=int, default=32, help="decode steps D per run")
    p.add_argument("--out", default=str(ROOT / "bench" / "out"), help="folder for the JSON lines")
    return p.parse_args()


def run(args, prompt_path: Path, n_prompt: int, method: str, ratio: float) -> dict:
    cmd = [args.sentinel, "generate", "--model", str(Path(args.model_dir) / MODEL_FILE), "--prompt-file",
           str(prompt_path), "--max-tokens", str(args.decode_tokens + 1), "--ignore-eos", "--temperature", "0",
           "--json", "--dtype", args.dtype, "--threads", str(args.threads), "--compress", method]
    if method != "none":
        cmd += ["--ratio", str(ratio)]
    if method == "sentinel":
        cmd += ["--span", str(args.span)]
    res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    if res["prompt_tokens"] != n_prompt:
        sys.exit(f"bench: sentinel saw {res['prompt_tokens']} prompt tokens, expected {n_prompt}")
    # decode_seconds is the decode steps' own time (sampling and one forward each), output excluded.
    steps = res["decode_steps"]
    return {"method": method, "ratio": ratio, "prefill_s": res["prefill_seconds"], "decode_s": res["decode_seconds"],
            "decode_steps": steps, "decode_tps": steps / res["decode_seconds"], "kv_bytes": res["kv_bytes"],
            "peak_kv_bytes": res["peak_kv_bytes"], "kv_entries": res["kv_entries"],
            "achieved_ratio": res["achieved_ratio"]}


def summarise(runs: list[dict]) -> dict:
    first = runs[0]
    return {"kind": "summary", "method": first["method"], "ratio": first["ratio"], "repeats": len(runs),
            "decode_tps": spread([r["decode_tps"] for r in runs]),
            "prefill_tps": spread([r["n_prompt"] / r["prefill_s"] for r in runs]),
            "kv_bytes": first["kv_bytes"], "peak_kv_bytes": first["peak_kv_bytes"],
            "kv_entries": first["kv_entries"], "achieved_ratio": first["achieved_ratio"],
            "load1": spread([r["load1"] for r in runs])}


def print_table(meta: dict, summaries: list[dict]) -> None:
    full = next(s for s in summaries if s["method"] == "none")
    print(f"\nMachine: {meta['cpu']}, {meta['nproc']} cores; threads {meta['threads']}; {meta['dtype']}; "
          f"git {meta['git_rev']}{' (dirty)' if meta['git_dirty'] else ''}; {meta['date']}")
    print(f"Prompt {meta['context']} tokens, then {meta['decode_tokens']} greedy decode steps; "
          f"median (min–max) of {meta['repeats']} runs.\n")
    print("| method | ratio | achieved | KV entries | KV MiB | vs full | peak KV MiB | decode tok/s | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s in summaries:
        d = s["decode_tps"]
        print(f"| {s['method']} | {s['ratio']:.2f} | {s['achieved_ratio']:.3f} | {s['kv_entries']} | "
              f"{s['kv_bytes'] / 2**20:.1f} | {s['kv_bytes'] / full['kv_bytes']:.3f} | {s['peak_kv_bytes'] / 2**20:.1f} | "
              f"{d['median']:.2f} ({d['min']:.2f}–{d['max']:.2f}) | "
              f"{d['median'] / full['decode_tps']['median']:.2f}x |")


def main() -> None:
    args = parse_args()
    methods = args.methods.split(",")
    for m in methods:
        if m not in METHODS:
            sys.exit(f"bench: unknown method '{m}' (use {', '.join(METHODS)})")
    ratios = [float(r) for r in args.ratios.split(",")]
    if not Path(args.sentinel).is_file():
        sys.exit(f"bench: {args.sentinel} not found; build it first (scripts/setup.sh)")
    model_path = str(Path(args.model_dir) / MODEL_FILE)
    if not Path(model_path).is_file():
        sys.exit(f"bench: {model_path} not found; scripts/setup.sh fetches it")

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "meta", **machine_info(args.threads), "context": args.context, "dtype": args.dtype,
            "decode_tokens": args.decode_tokens, "repeats": args.repeats, "span": args.span, "model": MODEL_FILE,
            "batch": 1, "load_at_start": list(os.getloadavg())}
    out_path = out_dir / f"compression-{time.strftime('%Y%m%d-%H%M%S')}-{meta['git_rev']}.jsonl"
    log = open(out_path, "w", encoding="utf-8")
    log.write(json.dumps(meta) + "\n")

    source = Path(args.text).read_text(encoding="utf-8")
    text, _ = make_prompt(args.sentinel, model_path, source, args.context, out_dir)
    prompt_path = out_dir / f"prompt-{args.context}.txt"
    prompt_path.write_text(text, encoding="utf-8")

    configs = [("none", 0.0)] + [(m, r) for r in ratios for m in methods]
    runs: dict[tuple[str, float], list[dict]] = {c: [] for c in configs}
    for rep in range(args.repeats):
        for method, ratio in configs:
            load = load1()
            r = run(args, prompt_path, args.context, method, ratio)
            r.update({"kind": "run", "repeat": rep, "load1": load, "n_prompt": args.context})
            log.write(json.dumps(r) + "\n")
            log.flush()
            runs[(method, ratio)].append(r)
            print(f"{method:10s} r={ratio:.2f} rep {rep}: decode {r['decode_tps']:6.2f} tok/s, "
                  f"KV {r['kv_bytes'] / 2**20:7.1f} MiB ({r['kv_entries']} entries, achieved {r['achieved_ratio']:.3f}), "
                  f"load {load:.2f}", file=sys.stderr)
    summaries = [summarise(runs[c]) for c in configs]
    for s in summaries:
        log.write(json.dumps(s) + "\n")
    log.write(json.dumps({"kind": "end", "load_at_end": list(os.getloadavg())}) + "\n")
    log.close()
    print_table(meta, summaries)
    print(f"\nJSON lines: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")


if __name__ == "__main__":
    main()
