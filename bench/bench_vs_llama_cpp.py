#!/usr/bin/env python3
"""Sentinel beside llama.cpp on the same GGUF, same threads, in one run: decode tok/s at several
depths (full cache, and Sentinel's sentinel compression at given ratios), prefill pp512, peak RSS,
bytes read per decoded token and the memory bandwidth that implies, next to a measured read bound.

The engines alternate cell by cell and repeat by repeat, so a disturbance hits both. llama.cpp is
built from the source vendored in the PyPI sdist llama-cpp-python==0.3.36 (bench/peers/
build_llama_cpp.sh, SHA-256 pinned). A measurement, not a test: nothing asserts on a timing.

  python3 bench/bench_vs_llama_cpp.py                          # depths 0..8192, 3 repeats (~25 min)
  python3 bench/bench_vs_llama_cpp.py --depths 0,512 --repeats 1 --out /tmp/quick.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (DEFAULT_TEXT, MODEL_FILE, ROOT, default_model_dir, llama_cpp_bin, load1,  # noqa: E402
                    machine_info, require_matplotlib, spread)



def run(cmd: list[str], env: dict | None = None) -> tuple[str, int]:
    """stdout and the peak RSS (bytes) of one command, timed by /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name, *cmd], capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
        return p.stdout, int(Path(t.name).read_text().split()[-1]) * 1024


def llama_bench(bin_dir: Path, model: Path, threads: int, depth: int, decode: int, prompt: int, repack: int) -> dict:
    cmd = [str(bin_dir / "llama-bench"), "-m", str(model), "-t", str(threads), "-r", "1", "-fa", "off", "-o", "json",
           "-p", str(prompt), "-n", str(decode), "-d", str(depth), "--repack", str(repack)]
    out, rss = run(cmd)
    rows = json.loads(out)
    return {"tokens_per_s": rows[0]["avg_ts"], "peak_rss_bytes": rss}


def sentinel_bench(sentinel: Path, model: Path, text: Path, threads: int, depth: int, decode: int,
                   ratios: list[float], layout: str = "stream", full: bool = True) -> list[dict]:
    """One `sentinel bench` process: the full cache (unless full=False) and --compress sentinel with
    `layout` at each ratio; --profile records where each kind of decode step spends its time."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "bench.jsonl"
        methods = ",".join((["full"] if full else []) + (["sentinel"] if ratios and depth >= 512 else []))
        if not methods:
            return []
        cmd = [str(sentinel), "bench", "-m", str(model), "-d", str(text), "--contexts", str(max(depth, 2)),
               "--methods", methods, "--layout", layout, "--profile",
               "--ratios", ",".join(str(r) for r in ratios) if ratios else "0.5", "--decode-tokens", str(decode),
               "--repeats", "1", "-t", str(threads), "-o", str(out)]
        run(cmd)
        return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def memory_bound(threads: int) -> float:
    """GB/s of torch summing a 512 MiB float32 tensor with `threads` threads (median of 5)."""
    code = ("import time, torch; torch.set_num_threads(%d); x = torch.ones(2**27); x.sum(); ts = []\n"
            "for _ in range(5):\n t = time.perf_counter(); x.sum(); ts.append(time.perf_counter() - t)\n"
            "print(sorted(ts)[2])") % threads
    secs = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    return 2**29 / secs / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--depths", default="0,512,2048,4096,8192", help="context tokens before decoding (comma-separated)")
    p.add_argument("--ratios", default="0.5,0.75", help="Sentinel compression ratios measured at depths >= 512")
    p.add_argument("--layouts", default="stream,heavy",
                   help="--layout of the compressed cells: stream, and heavy (the default of --compress sentinel: H2O "
                        "attention mass and surprisal beside the spans, the layout of the shipped heavy adapter)")
    p.add_argument("--decode-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", type=Path, default=default_model_dir() / MODEL_FILE)
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="text Sentinel's prompts are cut from")
    p.add_argument("--sentinel", type=Path, default=ROOT / "build" / "sentinel")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "vs_llama_cpp.json")
    p.add_argument("--plot", type=Path, default=ROOT / "docs" / "results" / "vs_llama_cpp.png")
    p.add_argument("--llama-repack", type=int, choices=(0, 1), default=1,
                   help="llama-bench --repack (its default 1; 0 where its repacked kernels crash, as seen at depth "
                        ">= 512 on a Xeon with AMX)")
    a = p.parse_args()
    require_matplotlib()  # the plot at the end needs it: say so now, not after the run
    layouts = [x for x in a.layouts.split(",") if x]
    depths = [int(d) for d in a.depths.split(",")]
    ratios = [float(r) for r in a.ratios.split(",") if r]

    bin_dir = llama_cpp_bin("llama-bench")
    info = json.loads(subprocess.run([str(a.sentinel), "info", "-m", str(a.model), "--json"], capture_output=True,
                                     text=True, check=True).stdout)
    weight_bytes = info["resident_weight_bytes"]
    record = {"machine": machine_info(a.threads), "model": a.model.name, "threads": a.threads,
              "decode_tokens": a.decode_tokens, "repeats": a.repeats, "sentinel_engine": info["engine"],
              "llama_cpp": f"llama-cpp-python==0.3.36 sdist, llama-bench -fa off --repack {a.llama_repack}, KV f16",
              "memory_bound_gb_s": memory_bound(a.threads), "load_at_start": load1()}
    raw: dict[str, list] = {}
    for rep in range(a.repeats):
        for depth in depths:
            print(f"bench: repeat {rep + 1}/{a.repeats}, depth {depth}", file=sys.stderr)
            r = llama_bench(bin_dir, a.model, a.threads, depth, a.decode_tokens, 0, a.llama_repack)
            raw.setdefault(f"llama.cpp/full/{depth}", []).append(r)
            cells = [(layout, c) for i, layout in enumerate(layouts or ["stream"])
                     for c in sentinel_bench(a.sentinel, a.model, a.text, a.threads, depth, a.decode_tokens,
                                             ratios if layouts else [], layout, full=i == 0)]
            for layout, cell in cells:
                name = ("full" if cell["method"] == "full" else
                        f"sentinel {cell['ratio']}" if layout == "stream" else f"sentinel {layout} {cell['ratio']}")
                raw.setdefault(f"sentinel/{name}/{depth}", []).append({
                    "decode_latency_ms": cell["decode_latency_ms"], "decode_profile": cell.get("decode_profile"),
                    "tokens_per_s": cell["decode_tokens_per_s"]["median"],
                    "prefill_tokens_per_s": cell["prefill_tokens_per_s"]["median"],
                    "peak_rss_bytes": cell["peak_rss_bytes"]["median"], "kv_entries": cell["kv_entries"],
                    "kv_bytes": cell["kv_bytes"], "achieved_ratio": cell["achieved_ratio"]})
        r = llama_bench(bin_dir, a.model, a.threads, 0, 0, 512, a.llama_repack)
        raw.setdefault("llama.cpp/pp512", []).append(r)

    rows = []
    for key, runs in raw.items():
        engine, *rest = key.split("/")
        row = {"engine": engine, "cell": "/".join(rest), "tokens_per_s": spread([r["tokens_per_s"] for r in runs]),
               "peak_rss_mib": spread([r["peak_rss_bytes"] / 2**20 for r in runs])}
        if len(rest) == 2:
            depth = int(rest[1])
            cells = runs[-1].get("kv_entries", depth)
            row.update({"method": rest[0], "depth": depth, "kv_cells_at_end": cells})
            # K/V bytes a decoded token reads: what Sentinel's cache held (f16, both engines' default;
            # sliding-window layers hold their window only, in llama.cpp too); llama.cpp's full
            # cache holds what Sentinel's full cache does at the same depth.
            kv_bytes = runs[-1].get("kv_bytes", raw.get(f"sentinel/full/{depth}", [{}])[-1].get("kv_bytes", 0))
            bytes_per_token = weight_bytes + kv_bytes
            row["bytes_per_token_mb"] = bytes_per_token / 1e6
            row["achieved_gb_s"] = bytes_per_token * row["tokens_per_s"]["median"] / 1e9
            if "achieved_ratio" in runs[-1]:
                row["achieved_ratio"] = runs[-1]["achieved_ratio"]
            for field in ("decode_latency_ms", "decode_profile"):  # the last repeat's
                if runs[-1].get(field):
                    row[field] = runs[-1][field]
            if engine == "sentinel" and depth == 512 and rest[0] == "full":
                rows.append({"engine": "sentinel", "cell": "pp512",
                             "tokens_per_s": spread([r["prefill_tokens_per_s"] for r in runs]),
                             "peak_rss_mib": row["peak_rss_mib"]})
        rows.append(row)
    record["rows"] = rows
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=1) + "\n")
    print(markdown(record))
    plot(record, a.plot)


def markdown(record: dict) -> str:
    fmt = lambda s: f"{s['median']:.1f} ({s['min']:.1f}-{s['max']:.1f})"  # noqa: E731
    lines = ["| engine | cell | tok/s | peak RSS MiB | MB read/token | GB/s |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    for r in sorted(record["rows"], key=lambda r: (r.get("depth", -1), r["cell"], r["engine"])):
        lines.append(f"| {r['engine']} | {r['cell']} | {fmt(r['tokens_per_s'])} | {r['peak_rss_mib']['median']:.0f} | "
                     f"{r.get('bytes_per_token_mb', 0):.0f} | {r.get('achieved_gb_s', 0):.1f} |")
    m = record["machine"]
    lines.append(f"\n{m['cpu']}, {record['threads']} threads, git {m['git_rev']}{' (dirty)' if m['git_dirty'] else ''}, "
                 f"{record['repeats']} repeats (median, min-max), measured read bound "
                 f"{record['memory_bound_gb_s']:.1f} GB/s")
    return "\n".join(lines)


def plot(record: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series: dict[str, list] = {}
    for r in record["rows"]:
        if "depth" in r:
            series.setdefault(f"{r['engine']} {r['method']}", []).append((r["depth"], r["tokens_per_s"]))
    for name, pts in sorted(series.items()):
        pts.sort()
        xs = [d for d, _ in pts]
        ax.errorbar(xs, [s["median"] for _, s in pts],
                    yerr=[[s["median"] - s["min"] for _, s in pts], [s["max"] - s["median"] for _, s in pts]],
                    marker="o", capsize=3, label=name, linestyle="--" if name.startswith("llama") else "-")
    ax.set_xlabel("depth (tokens in context before decoding)")
    ax.set_ylabel("decode tokens/s, batch 1")
    ax.set_title(f"{record['model']}, {record['threads']} threads: Sentinel vs llama.cpp")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
