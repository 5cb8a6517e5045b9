#!/usr/bin/env python3
"""Engine benchmark: prefill and decode tokens/s at batch 1, Sentinel beside Hugging Face transformers.

For each context length x dtype x engine, the same prompt ids (a prefix of wikitext-2 test, exactly
N tokens) are prefilled, then D tokens are decoded greedily with the KV cache. Sentinel runs as the
`sentinel generate --json` CLI (one process per run); transformers runs in this process on the same
GGUF, dequantised to the same dtype, with the same thread count. Runs of the two engines alternate
so that load drift on a shared machine hits both alike; the first run of each pair is a warm-up and
is discarded. Results go to bench/out/ as JSON lines; a markdown table goes to stdout.

This is a measurement, not a test: nothing here asserts on a timing.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF conversion bar; read when tqdm is imported

from common import (DEFAULT_TEXT, MODEL_FILE, ROOT, default_model_dir, load1, machine_info, make_prompt,
                    spread)

DTYPE_FLAGS = {"float32": "float32", "bfloat16": "bfloat16"}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sentinel", default=str(ROOT / "build" / "sentinel"), help="path to the sentinel binary")
    p.add_argument("--model-dir", default=str(default_model_dir()), help=f"folder holding {MODEL_FILE}")
    p.add_argument("--text", default=str(DEFAULT_TEXT), help="text the prompts are cut from")
    p.add_argument("--contexts", default="512,2048", help="prompt lengths in tokens, comma-separated")
    p.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated: float32, bfloat16")
    p.add_argument("--engines", default="sentinel,transformers", help="comma-separated: sentinel, transformers")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="threads for both engines (default: all cores)")
    p.add_argument("--repeats", type=int, default=3, help="measured runs per configuration (after one warm-up)")
    p.add_argument("--decode-tokens", type=int, default=32, help="decode steps D per run")
    p.add_argument("--chunk", type=int, default=0,
                   help="Sentinel prefill chunk (tokens per forward); 0 = the engine's default")
    p.add_argument("--out", default=str(ROOT / "bench" / "out"), help="folder for the JSON lines")
    return p.parse_args()


# ---------------------------------------------------------------------------------------------
# Engines. Each run returns prefill seconds for N tokens and per-step decode seconds (or their
# total when only that is known), plus the greedy tokens for a cross-check.


def run_sentinel(args, prompt_path: Path, n_prompt: int, dtype: str) -> dict:
    cmd = [args.sentinel, "generate", "--model", str(Path(args.model_dir) / MODEL_FILE),
           "--prompt-file", str(prompt_path), "--max-tokens", str(args.decode_tokens + 1), "--ignore-eos",
           "--temperature", "0", "--json", "--dtype", DTYPE_FLAGS[dtype], "--threads", str(args.threads)]
    if args.chunk > 0:
        cmd += ["--chunk", str(args.chunk)]
    res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    if res["prompt_tokens"] != n_prompt:
        sys.exit(f"bench: sentinel saw {res['prompt_tokens']} prompt tokens, expected {n_prompt}")
    if res["dtype"] != dtype:
        sys.exit(f"bench: sentinel ran in {res['dtype']}, expected {dtype}")
    # decode_seconds is the decode steps' own time (sampling and one forward each), output excluded.
    n_steps = res["decode_steps"]
    return {"prefill_s": res["prefill_seconds"], "decode_s": res["decode_seconds"], "decode_steps": n_steps,
            "step_s": None, "tokens": res["tokens"]}


class Transformers:
    def __init__(self, args, dtype: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        self.torch = torch
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        # dequantize=True: dense nn.Linear weights in `dtype`, as Sentinel holds them. Without it,
        # transformers >= 5 may keep the Q4_1 blocks packed and unpack them at every forward.
        self.model = AutoModelForCausalLM.from_pretrained(
            args.model_dir, gguf_file=MODEL_FILE, dtype=getattr(torch, dtype),
            quantization_config=GgufConfig(gguf_file=MODEL_FILE, dequantize=True)).eval()
        weight = self.model.model.layers[0].self_attn.q_proj.weight
        if not isinstance(weight, torch.nn.Parameter) or weight.dtype != getattr(torch, dtype):
            sys.exit(f"bench: transformers did not load dense {dtype} weights ({type(weight)}, {weight.dtype})")
        # The KV-cache keyword is `cache` from transformers 5.x on, `past_key_values` before.
        params = inspect.signature(self.model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self.load_s = time.perf_counter() - t0
        self.tokenizer = AutoTokenizer.from_pretrained(args.model_dir, gguf_file=MODEL_FILE)
        self.decode_tokens = args.decode_tokens

    def same_ids(self, text: str, ids: list[int]) -> bool:
        return self.tokenizer(text, add_special_tokens=True)["input_ids"] == ids

    def _cache(self, out):
        return out.cache if self.cache_kw == "cache" else out.past_key_values

    def run(self, ids: list[int]) -> dict:
        torch = self.torch
        with torch.inference_mode():
            x = torch.tensor([ids], dtype=torch.long)
            t0 = time.perf_counter()
            # logits_to_keep=1: only the last position's logits, as Sentinel and HF generate() do.
            out = self.model(input_ids=x, use_cache=True, logits_to_keep=1)
            nxt = out.logits[0, -1].argmax()
            prefill_s = time.perf_counter() - t0
            past, tokens, steps = self._cache(out), [int(nxt)], []
            for _ in range(self.decode_tokens):
                t0 = time.perf_counter()
                out = self.model(input_ids=nxt.view(1, 1), use_cache=True, **{self.cache_kw: past})
                past = self._cache(out)
                nxt = out.logits[0, -1].argmax()
                tokens.append(int(nxt))
                steps.append(time.perf_counter() - t0)
        return {"prefill_s": prefill_s, "decode_s": sum(steps), "decode_steps": len(steps), "step_s": steps,
                "tokens": tokens}


# ---------------------------------------------------------------------------------------------
# Statistics and output


def summarise(engine: str, ctx: int, dtype: str, runs: list[dict]) -> dict:
    prefill = [ctx / r["prefill_s"] for r in runs]
    decode = [r["decode_steps"] / r["decode_s"] for r in runs]
    s = {"kind": "summary", "engine": engine, "context": ctx, "dtype": dtype, "repeats": len(runs),
         "prefill_tps": spread(prefill), "decode_tps": spread(decode),
         "load1": spread([r["load1"] for r in runs])}
    steps = [t for r in runs if r["step_s"] for t in r["step_s"]]
    if steps:  # per-step view (transformers only): rate at the median step, and at the quartiles
        q1, q2, q3 = statistics.quantiles(steps, n=4)
        s["decode_step_tps"] = {"median": 1 / q2, "iqr_low": 1 / q3, "iqr_high": 1 / q1}
    return s


def fmt(sp: dict) -> str:
    return f"{sp['median']:.1f} ({sp['min']:.1f}–{sp['max']:.1f})"


def print_table(meta: dict, summaries: list[dict]) -> None:
    print(f"\nMachine: {meta['cpu']}, {meta['nproc']} cores; threads {meta['threads']}; "
          f"git {meta['git_rev']}{' (dirty)' if meta['git_dirty'] else ''}; torch {meta.get('torch', '-')}, "
          f"transformers {meta.get('transformers', '-')}; {meta['date']}")
    print(f"Batch 1; decode = {meta['decode_tokens']} greedy steps after the prompt; "
          f"median (min–max) of {meta['repeats']} runs after a warm-up.\n")
    print("| context | dtype | engine | prefill tok/s | decode tok/s | load (1 min) |")
    print("| ---: | --- | --- | ---: | ---: | ---: |")
    for s in summaries:
        print(f"| {s['context']} | {s['dtype']} | {s['engine']} | {fmt(s['prefill_tps'])} | "
              f"{fmt(s['decode_tps'])} | {s['load1']['median']:.1f} |")


def main() -> None:
    args = parse_args()
    contexts = [int(c) for c in args.contexts.split(",")]
    dtypes = args.dtypes.split(",")
    engines = args.engines.split(",")
    for d in dtypes:
        if d not in DTYPE_FLAGS:
            sys.exit(f"bench: unknown dtype '{d}' (use float32 or bfloat16)")
    for e in engines:
        if e not in ("sentinel", "transformers"):
            sys.exit(f"bench: unknown engine '{e}' (use sentinel or transformers)")
    if not Path(args.sentinel).is_file():
        sys.exit(f"bench: {args.sentinel} not found; build it first (scripts/setup.sh)")
    model_path = str(Path(args.model_dir) / MODEL_FILE)
    if not Path(model_path).is_file():
        sys.exit(f"bench: {model_path} not found; scripts/setup.sh fetches it")

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "meta", **machine_info(args.threads), "decode_tokens": args.decode_tokens,
            "repeats": args.repeats, "chunk": args.chunk or "default", "model": MODEL_FILE, "batch": 1,
            "load_at_start": list(os.getloadavg())}
    out_path = out_dir / f"engine-{time.strftime('%Y%m%d-%H%M%S')}-{meta['git_rev']}.jsonl"
    log = open(out_path, "w", encoding="utf-8")
    log.write(json.dumps(meta) + "\n")

    source = Path(args.text).read_text(encoding="utf-8")
    prompts = {}
    for n in contexts:
        text, ids = make_prompt(args.sentinel, model_path, source, n, out_dir)
        path = out_dir / f"prompt-{n}.txt"
        path.write_text(text, encoding="utf-8")
        prompts[n] = (path, text, ids)

    summaries = []
    for dtype in dtypes:
        hf = Transformers(args, dtype) if "transformers" in engines else None
        for n in contexts:
            path, text, ids = prompts[n]
            if hf is not None and not hf.same_ids(text, ids):
                print(f"bench: note: the transformers tokenizer gives other ids for the {n}-token prompt; "
                      "both engines get Sentinel's ids", file=sys.stderr)
            runs = {e: [] for e in engines}
            for rep in range(args.repeats + 1):  # rep 0 is the warm-up
                for engine in engines:
                    load = load1()
                    r = run_sentinel(args, path, n, dtype) if engine == "sentinel" else hf.run(ids)
                    r.update({"kind": "run", "engine": engine, "context": n, "dtype": dtype, "repeat": rep,
                              "warmup": rep == 0, "load1": load})
                    log.write(json.dumps(r) + "\n")
                    log.flush()
                    print(f"{engine:12s} ctx {n:5d} {dtype:8s} rep {rep}: prefill {n / r['prefill_s']:7.1f} tok/s, "
                          f"decode {r['decode_steps'] / r['decode_s']:6.2f} tok/s, load {load:.2f}", file=sys.stderr)
                    if rep > 0:
                        runs[engine].append(r)
            if len(engines) == 2:  # greedy tokens of the two engines, for the record (not a parity test)
                a, b = runs["sentinel"][0]["tokens"], runs["transformers"][0]["tokens"]
                agree = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                log.write(json.dumps({"kind": "agreement", "context": n, "dtype": dtype,
                                      "same_greedy_prefix": agree, "of": min(len(a), len(b))}) + "\n")
            for engine in engines:
                s = summarise(engine, n, dtype, runs[engine])
                summaries.append(s)
                log.write(json.dumps(s) + "\n")
        del hf
    meta["load_at_end"] = list(os.getloadavg())
    log.write(json.dumps({"kind": "end", "load_at_end": meta["load_at_end"]}) + "\n")
    log.close()
    print_table(meta, summaries)
    print(f"\nJSON lines: {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")


if __name__ == "__main__":
    main()
