#!/usr/bin/env python3
"""Batched decode beside llama.cpp's llama-batched-bench on the same GGUF and threads: B sequences,
each with its own prompt of `depth` tokens and its own cache, decoded together one token each per
step; aggregate decode tok/s (B x decoded tokens / decode time) and prefill tok/s, for every batch
size and depth, Sentinel's full cache and --compress sentinel at the given ratios.

llama.cpp is built from the source vendored in the PyPI sdist llama-cpp-python==0.3.36
(bench/peers/build_llama_cpp.sh, SHA-256 pinned). One llama-batched-bench process per depth runs
every batch size (prompts not shared: its N_KV = B x (depth + decoded)); one `sentinel bench
--batch` process per depth runs every batch size and method. Both engines run each cell once, with
no warm-up run (llama-batched-bench has none; a prefill of B x depth tokens warms the decode that
follows it). A measurement, not a test.

  python3 bench/bench_batched.py                                # depths 1024,4096 x batches 1..16 (~45 min)
  python3 bench/bench_batched.py --max-tokens 32768              # without 4096 x 16 (~20 min on 2 cores)
  python3 bench/bench_batched.py --depths 1024 --batches 1,8 --out /tmp/b.json --plot /tmp/b.png
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DEFAULT_TEXT, MODEL_FILE, ROOT, default_model_dir, llama_cpp_bin, load1,  # noqa: E402
                    machine_info, require_matplotlib)


def check(cmd: list[str]) -> str:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout


def llama_batched(bin_dir: Path, model: Path, threads: int, depth: int, decode: int, batches: list[int],
                  repack: bool) -> list[dict]:
    """One llama-batched-bench run over every batch size: its JSON lines (speed_tg, speed_pp, ...)."""
    cmd = [str(bin_dir / "llama-batched-bench"), "-m", str(model), "-c", str(max(batches) * (depth + decode) + 256),
           "-b", "2048", "-ub", "512", "-npp", str(depth), "-ntg", str(decode), "-npl", ",".join(map(str, batches)),
           "-t", str(threads), "-fa", "off", "--output-format", "jsonl"]
    if not repack:
        cmd.append("--no-repack")
    rows = [json.loads(line) for line in check(cmd).splitlines() if line.startswith("{")]
    if len(rows) != len(batches):
        sys.exit(f"bench: llama-batched-bench printed {len(rows)} JSON rows for {len(batches)} batch sizes")
    return rows


def sentinel_batched(sentinel: Path, model: Path, text: Path, threads: int, depth: int, decode: int,
                     batches: list[int], methods: str, ratios: str, layout: str) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.jsonl"
        check([str(sentinel), "bench", "-m", str(model), "-d", str(text), "--contexts", str(depth),
               "--batch", ",".join(map(str, batches)), "--methods", methods, "--ratios", ratios,
               "--layout", layout, "--decode-tokens", str(decode), "--repeats", "1", "--warmups", "0", "-t", str(threads), "-o", str(out)])
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", default="1024,4096", help="prompt tokens per sequence (comma-separated)")
    p.add_argument("--batches", default="1,2,4,8,16", help="sequences decoded together (comma-separated)")
    p.add_argument("--methods", default="full,sentinel", help="Sentinel's --methods")
    p.add_argument("--ratios", default="0.5", help="Sentinel's compression ratios")
    p.add_argument("--layout", default="stream", choices=["stream", "heavy"],
                   help="sentinel's --layout (the published record: stream; heavy is --compress sentinel's default)")
    p.add_argument("--decode-tokens", type=int, default=32, help="tokens decoded per sequence")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", type=Path, default=default_model_dir() / MODEL_FILE)
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="text Sentinel's prompts are cut from")
    p.add_argument("--sentinel", type=Path, default=ROOT / "build" / "sentinel")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "batched_vs_llama_cpp.json")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "results" / "batched_vs_llama_cpp.png")
    p.add_argument("--max-tokens", type=int, default=0,
                   help="leave out cells whose batch x depth exceeds this many prompt tokens (0: none), for a run "
                        "that must fit its time: each such cell is a prefill of minutes on 2 cores")
    p.add_argument("--llama-repack", type=int, choices=(0, 1), default=1,
                   help="1: llama.cpp's default weight repacking; 0 passes --no-repack (its repacked kernels "
                        "crashed on a Xeon with AMX)")
    a = p.parse_args()
    require_matplotlib()  # the plot at the end needs it: say so now, not after the run
    if not a.sentinel.exists():
        sys.exit(f"bench: {a.sentinel} does not exist; build it with scripts/setup.sh (or pass --sentinel)")
    depths = [int(x) for x in a.depths.split(",") if x]
    batches = [int(x) for x in a.batches.split(",") if x]

    bin_dir = llama_cpp_bin("llama-batched-bench")
    record = {"machine": machine_info(a.threads), "model": a.model.name, "threads": a.threads,
              "decode_tokens": a.decode_tokens, "sentinel_layout": a.layout, "load_at_start": load1(),
              "llama_cpp": "llama-cpp-python==0.3.36 sdist, llama-batched-bench -fa off -b 2048 -ub 512, KV f16"
                           + ("" if a.llama_repack else ", --no-repack"),
              "rows": []}
    record["left_out"] = [{"depth": d, "batch": b} for d in depths for b in batches if a.max_tokens and d * b > a.max_tokens]
    for depth in depths:  # engines alternate depth by depth
        fitting = [b for b in batches if not a.max_tokens or depth * b <= a.max_tokens]
        if not fitting:
            continue
        print(f"bench: depth {depth}, batches {fitting}, llama-batched-bench", file=sys.stderr)
        for r in llama_batched(bin_dir, a.model, a.threads, depth, a.decode_tokens, fitting, a.llama_repack == 1):
            record["rows"].append({"engine": "llama.cpp", "method": "full", "depth": depth, "batch": r["pl"],
                                   "decode_tokens_per_s": r["speed_tg"], "prefill_tokens_per_s": r["speed_pp"]})
        print(f"bench: depth {depth}, sentinel bench", file=sys.stderr)
        for c in sentinel_batched(a.sentinel, a.model, a.text, a.threads, depth, a.decode_tokens, fitting,
                                  a.methods, a.ratios, a.layout):
            method = "full" if c["method"] == "full" else f"{c['method']} {c['ratio']}"
            record["rows"].append({"engine": "sentinel", "method": method, "depth": depth, "batch": c["batch"],
                                   "decode_tokens_per_s": c["decode_tokens_per_s"]["median"],
                                   "prefill_tokens_per_s": c["prefill_tokens_per_s"]["median"],
                                   "kv_bytes": c.get("kv_bytes"), "achieved_ratio": c.get("achieved_ratio")})
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=1) + "\n")
    print(markdown(record))
    plot(record, a.plot)


def series(record: dict) -> dict[str, dict[tuple[int, int], float]]:
    """decode tok/s by engine and method, keyed by (depth, batch)."""
    out: dict[str, dict[tuple[int, int], float]] = {}
    for r in record["rows"]:
        name = "llama.cpp" if r["engine"] == "llama.cpp" else f"Sentinel, {r['method']}"
        out.setdefault(name, {})[(r["depth"], r["batch"])] = r["decode_tokens_per_s"]
    return out


def markdown(record: dict) -> str:
    s = series(record)
    llama = s.pop("llama.cpp", {})
    names = sorted(s)
    lines = ["| depth | batch | llama.cpp | " + " | ".join(names) + " |", "| ---: | ---: | ---: |" + " ---: |" * len(names)]
    for depth, batch in sorted(llama):
        base = llama[(depth, batch)]
        cells = [f"{s[n][(depth, batch)]:.1f} ({s[n][(depth, batch)] / base:.2f}x)" if (depth, batch) in s[n] else ""
                 for n in names]
        lines.append(f"| {depth:,} | {batch} | {base:.1f} | " + " | ".join(cells) + " |")
    m = record["machine"]
    lines.append(f"\nAggregate decode tok/s ({record['decode_tokens']} tokens per sequence), {m['cpu']}, "
                 f"{record['threads']} threads, git {m['git_rev']}{' (dirty)' if m['git_dirty'] else ''}")
    if record.get("left_out"):
        lines.append("Left out (--max-tokens): " + ", ".join(f"depth {c['depth']:,} x batch {c['batch']}"
                                                            for c in record["left_out"]))
    return "\n".join(lines)


def plot(record: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401
    s = series(record)
    depths = sorted({d for points in s.values() for d, _ in points})
    fig, axes = plt.subplots(1, len(depths), figsize=(5.5 * len(depths), 4.2), squeeze=False)
    for ax, depth in zip(axes[0], depths):
        for name, points in sorted(s.items()):
            xs = sorted(b for d, b in points if d == depth)
            ax.plot(xs, [points[(depth, b)] for b in xs], marker="o", label=name,
                    linestyle="--" if name.startswith("llama") else "-")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({b for points in s.values() for d, b in points if d == depth}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("batch (sequences decoded together)")
        ax.set_ylabel("aggregate decode tokens/s")
        ax.set_title(f"depth {depth:,} per sequence")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{record['model']}, {record['threads']} threads: batched decode, Sentinel vs llama.cpp")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
