"""Turns the JSON lines of `sentinel eval lm`, `eval gen` and `bench` into markdown tables and PNG plots.

    python3 bench/report.py docs/results/lm.jsonl docs/results/gen.jsonl docs/results/bench.jsonl --out docs/results

Writes, for the kinds of records given: OUT/lm.md and OUT/lm.png (perplexity vs achieved compression
ratio per method, one panel per setting), OUT/gen.md and OUT/gen.png (each generation metric vs
ratio), OUT/bench.md and OUT/bench.png (decode speed and KV memory vs context length). The tables
give every cell's nominal and achieved ratio beside its numbers; the footer names the machine,
threads, dtype and git revision the records carry. Needs matplotlib for the plots only.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

METHOD_ORDER = ["full", "sentinel", "local", "scattered", "strided", "streaming", "h2o"]
GEN_METRICS = [("bleu", "BLEU-4", "{:.2f}"), ("rouge_l", "ROUGE-L F", "{:.4f}"), ("similarity", "MiniLM cos", "{:.4f}"),
               ("fluency_ppl", "fluency ppl", "{:.2f}"), ("distinct_2", "distinct-2", "{:.3f}")]


def load(paths: list[Path]) -> list[dict]:
    records = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                print(f"{path}:{number}: skipped a partial line (a run killed mid-write)", file=sys.stderr)
    return records


def row_name(r: dict) -> str:
    if r["method"] == "full":
        return "full"
    if r["variant"] == "fine-tuned":
        # The adapter's digest tells apart the rows of an adapter retrained in place (the same path).
        digest = r.get("adapter_sha256", "")
        return r["method"] + (f" (fine-tuned {digest[:8]})" if digest else " (fine-tuned)")
    return r["method"] + (" (untrained)" if r["method"] == "sentinel" else "")


def row_order(name: str) -> tuple:
    method = name.split(" ")[0]
    return (METHOD_ORDER.index(method) if method in METHOD_ORDER else 99, "fine-tuned" not in name)


def footer(records: list[dict]) -> str:
    envs = {json.dumps(r.get("environment", {}), sort_keys=True) for r in records}
    lines = []
    for e in sorted(envs):
        env = json.loads(e)
        if env:
            lines.append(f"{env.get('cpu')} ({env.get('cores')} cores), {env.get('threads')} threads, "
                         f"{env.get('dtype')}, git {env.get('git_revision')}, {env.get('time')}")
    return "Measured on: " + "; ".join(sorted(set(lines))) if lines else ""


def lm_tables(records: list[dict]) -> str:
    out = []
    for setting in sorted({r["setting"] for r in records}):
        rows = [r for r in records if r["setting"] == setting]
        ratios = sorted({r["ratio"] for r in rows if r["method"] != "full"})
        full = next((r for r in rows if r["method"] == "full"), None)
        config = rows[0].get("config", {})
        if setting == "paper":
            what = (f"masked blocks of {config.get('block')} elements, random {config.get('span_unit')} spans "
                    f"(max {config.get('max_span')}) for sentinel")
        else:
            what = (f"incremental reading with eviction, windows of {config.get('ctx')} tokens, sentinel spans of "
                    f"{config.get('span')} tokens")
        out.append(f"### {setting} setting: {what}\n")
        out.append(f"Data: `{config.get('data')}`, first {config.get('max_tokens')} tokens. "
                   "Each cell: perplexity (achieved ratio, KV entries retained per query).\n")
        header = "| method | " + " | ".join(f"r = {x:g}" for x in ratios) + " |"
        out.append(header)
        out.append("| --- |" + " ---: |" * len(ratios))
        if full:
            out.append(f"| full (no compression) | " + " | ".join(f"{full['ppl']:.2f}" for _ in ratios) + " |")
        by_name = defaultdict(dict)
        for r in rows:
            if r["method"] != "full":
                by_name[row_name(r)][r["ratio"]] = r
        for name in sorted(by_name, key=row_order):
            cells = []
            for x in ratios:
                r = by_name[name].get(x)
                cells.append("" if r is None else
                             f"{r['ppl']:.2f} ({r['achieved_ratio']:.2f}, {r['kv_entries_retained']:.0f})")
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    out.append(footer(records))
    return "\n".join(out) + "\n"


def lm_plot(records: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    settings = sorted({r["setting"] for r in records})
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 4.5), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        rows = [r for r in records if r["setting"] == setting]
        by_name = defaultdict(list)
        for r in rows:
            if r["method"] != "full":
                by_name[row_name(r)].append(r)
        for name in sorted(by_name, key=row_order):
            pts = sorted(by_name[name], key=lambda r: r["achieved_ratio"])
            style = "-" if "fine-tuned" in name or name.startswith("sentinel") else "--"
            ax.plot([r["achieved_ratio"] for r in pts], [r["ppl"] for r in pts], style, marker="o", label=name)
        full = next((r for r in rows if r["method"] == "full"), None)
        if full:
            ax.axhline(full["ppl"], color="black", linewidth=1, label="full")
        ax.set_xlim(0, 1)
        ax.set_yscale("log")
        ax.set_xlabel("achieved compression ratio (fraction of KV entries removed)")
        ax.set_ylabel("perplexity (log scale)")
        ax.set_title(f"{setting} setting")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def gen_tables(records: list[dict]) -> str:
    out = []
    ratios = sorted({r["ratio"] for r in records if r["method"] != "full"})
    config = records[0].get("config", {})
    out.append(f"Documents: {config.get('documents')} ({config.get('prefix')}-token prefixes, "
               f"{config.get('new_tokens')} generated tokens, {config.get('sampling', 'greedy')}).\n")
    for key, title, fmt in GEN_METRICS:
        if not any(key in r for r in records):
            continue
        out.append(f"### {title}\n")
        out.append("| method | " + " | ".join(f"r = {x:g}" for x in ratios) + " |")
        out.append("| --- |" + " ---: |" * len(ratios))
        by_name = defaultdict(dict)
        for r in records:
            by_name[row_name(r)][r["ratio"]] = r
        for name in sorted(by_name, key=row_order):
            if name == "full":
                value = fmt.format(by_name[name][0.0][key])
                out.append(f"| full (no compression) | " + " | ".join(value for _ in ratios) + " |")
                continue
            out.append(f"| {name} | " + " | ".join(
                fmt.format(by_name[name][x][key]) if x in by_name[name] else "" for x in ratios) + " |")
        out.append("")
    out.append(footer(records))
    return "\n".join(out) + "\n"


def gen_plot(records: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = [m for m in GEN_METRICS if any(m[0] in r for r in records)]
    cols = min(3, len(metrics))
    rows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(metrics):]:
        ax.axis("off")
    for ax, (key, title, _) in zip(axes.flat, metrics):
        by_name = defaultdict(list)
        for r in records:
            if r["method"] != "full":
                by_name[row_name(r)].append(r)
        for name in sorted(by_name, key=row_order):
            pts = sorted(by_name[name], key=lambda r: r["ratio"])
            ax.plot([r["ratio"] for r in pts], [r[key] for r in pts], marker="o", label=name)
        full = next((r for r in records if r["method"] == "full"), None)
        if full:
            ax.axhline(full[key], color="black", linewidth=1, label="full")
        ax.set_xlabel("nominal compression ratio")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if len(metrics) < rows * cols:
        axes.flat[-1].legend(handles, labels, loc="center", fontsize=9)
    else:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def batch(r: dict) -> int:
    return r.get("batch", 1)


def bench_tables(records: list[dict]) -> str:
    out = []
    config = records[0].get("config", {})
    out.append(f"Prompt: the first N tokens of `{config.get('data')}`, then {config.get('decode_tokens')} greedy "
               f"tokens; 1 warm-up + {config.get('repeats')} measured runs per cell, medians [min-max].\n")
    out.append(batch_tables(records))
    records = [r for r in records if batch(r) == 1]
    for n in sorted({r["context"] for r in records}):
        out.append(f"### {n} tokens of context\n")
        out.append("| method | ratio | achieved | KV MiB | peak RSS MiB | prefill tok/s | decode tok/s | "
                   "decode p50 / p99 ms |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        rows = sorted((r for r in records if r["context"] == n), key=lambda r: (row_order(row_name(r)), r["ratio"]))
        for r in rows:
            p, d, lat = r["prefill_tokens_per_s"], r["decode_tokens_per_s"], r["decode_latency_ms"]
            out.append(f"| {r['method']} | {r['ratio']:g} | {r['achieved_ratio']:.3f} | {r['kv_bytes'] / 2**20:.1f} | "
                       f"{r['peak_rss_bytes']['median'] / 2**20:.0f} | {p['median']:.0f} [{p['min']:.0f}-{p['max']:.0f}] | "
                       f"{d['median']:.2f} [{d['min']:.2f}-{d['max']:.2f}] | {lat['p50']:.0f} / {lat['p99']:.0f} |")
        out.append("")
    out.append(footer(records))
    return "\n".join(out) + "\n"


def batch_tables(records: list[dict]) -> str:
    """Batched decoding: one table per context length that was run with more than one sequence."""
    out = []
    for n in sorted({r["context"] for r in records if batch(r) > 1}):
        out.append(f"### Batched decoding, {n} tokens of context\n")
        out.append("Each sequence has its own prompt (disjoint windows of the text), KV cache and policy; one forward "
                   "pass per step decodes a token of every sequence. Tokens/s and KV are summed over the batch; "
                   "the step latency is one pass.\n")
        out.append("| method | ratio | batch | KV MiB | peak RSS MiB | prefill tok/s | decode tok/s | x batch 1 | "
                   "step p50 / p99 ms |")
        out.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        rows = sorted((r for r in records if r["context"] == n),
                      key=lambda r: (row_order(row_name(r)), r["ratio"], batch(r)))
        single = {(r["method"], r["ratio"]): r["decode_tokens_per_s"]["median"] for r in rows if batch(r) == 1}
        for r in rows:
            d, lat = r["decode_tokens_per_s"]["median"], r["decode_latency_ms"]
            base = single.get((r["method"], r["ratio"]))
            gain = f"{d / base:.2f}" if base else "-"
            out.append(f"| {r['method']} | {r['ratio']:g} | {batch(r)} | {r['kv_bytes'] / 2**20:.1f} | "
                       f"{r['peak_rss_bytes']['median'] / 2**20:.0f} | {r['prefill_tokens_per_s']['median']:.0f} | "
                       f"{d:.1f} | {gain} | {lat['p50']:.0f} / {lat['p99']:.0f} |")
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def speed_memory_plot(records: list[dict], x_of, x_label: str, titles: tuple[str, str], path: Path) -> None:
    """Decode tokens/s and KV MiB against x_of(record), one line per method and ratio."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4))
    by_name = defaultdict(list)
    for r in records:
        name = r["method"] + ("" if r["method"] == "full" else f" {r['ratio']:g}")  # speed: adapters do not matter
        by_name[name].append(r)
    for name in sorted(by_name, key=lambda x: (row_order(x), x)):
        pts = sorted(by_name[name], key=x_of)
        xs = [x_of(r) for r in pts]
        style = dict(color="black") if name == "full" else {}
        speed.plot(xs, [r["decode_tokens_per_s"]["median"] for r in pts], marker="o", label=name, **style)
        memory.plot(xs, [r["kv_bytes"] / 2**20 for r in pts], marker="o", label=name, **style)
    speed.set_title(titles[0])
    speed.set_ylabel("tokens/s")
    memory.set_title(titles[1])
    memory.set_ylabel("MiB")
    for ax in (speed, memory):
        ax.set_xscale("log", base=2)
        ax.set_xlabel(x_label)
        ax.grid(True, alpha=0.3)
    speed.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def batch_plot(records: list[dict], path: Path) -> bool:
    """Decode throughput and KV memory against batch size; False when no cell has batch > 1."""
    contexts = sorted({r["context"] for r in records if batch(r) > 1})
    if not contexts:
        return False
    n = contexts[-1]
    speed_memory_plot([r for r in records if r["context"] == n], batch, "sequences decoded together",
                      (f"decode throughput over the batch ({n} tokens of context)", "KV cache of the whole batch"), path)
    return True


def bench_plot(records: list[dict], path: Path) -> None:
    speed_memory_plot([r for r in records if batch(r) == 1], lambda r: r["context"], "context (tokens)",
                      ("decode speed (median)", "KV cache after the prompt and decoding"), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+", type=Path, help="JSON-lines files from sentinel eval lm, eval gen, bench")
    parser.add_argument("--out", type=Path, required=True, help="folder for the .md tables and .png plots")
    parser.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    args = parser.parse_args()
    records = load(args.results)
    lm = [r for r in records if "ppl" in r and "setting" in r]
    gen = [r for r in records if "bleu" in r]
    bench = [r for r in records if "decode_tokens_per_s" in r]
    if not lm and not gen and not bench:
        sys.exit("no eval lm, eval gen or bench records in " + ", ".join(map(str, args.results)))
    args.out.mkdir(parents=True, exist_ok=True)
    if lm:
        (args.out / "lm.md").write_text(lm_tables(lm))
        if not args.no_plots:
            lm_plot(lm, args.out / "lm.png")
        print(f"wrote {args.out / 'lm.md'}" + ("" if args.no_plots else f" and {args.out / 'lm.png'}"))
    if gen:
        (args.out / "gen.md").write_text(gen_tables(gen))
        if not args.no_plots:
            gen_plot(gen, args.out / "gen.png")
        print(f"wrote {args.out / 'gen.md'}" + ("" if args.no_plots else f" and {args.out / 'gen.png'}"))
    if bench:
        (args.out / "bench.md").write_text(bench_tables(bench))
        if not args.no_plots:
            bench_plot(bench, args.out / "bench.png")
            if batch_plot(bench, args.out / "bench_batch.png"):
                print(f"wrote {args.out / 'bench_batch.png'}")
        print(f"wrote {args.out / 'bench.md'}" + ("" if args.no_plots else f" and {args.out / 'bench.png'}"))


if __name__ == "__main__":
    main()
