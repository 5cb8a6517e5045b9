#!/usr/bin/env python3
"""`sentinel serve` beside llama.cpp's `llama-server` on the same GGUF and threads: requests/s,
time to first token (TTFT) and time per output token (TPOT) at p50/p99, at several concurrencies,
for Sentinel with a full cache and with per-request sentinel compression, on long prompts.

Every request is a streamed /v1/completions call through the official openai client with its own
prompt (token ids, so both engines read exactly the same tokens; distinct documents, so no prompt
cache helps), a fixed number of output tokens (ignore_eos) and greedy decoding. Both servers get
--parallel equal to the largest concurrency. A measurement, not a test: nothing asserts on timing.

  python3 bench/bench_server.py                                   # c = 1, 4, 16; 1024-token prompts (~15 min, 2 cores)
  python3 bench/bench_server.py --concurrency 1,4 --prompt-tokens 512 --out /tmp/quick.jsonl
  python3 bench/bench_server.py --table docs/results/server_vs_llama_server.jsonl   # the docs' table
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DEFAULT_TEXT, MODEL_FILE, ROOT, default_model_dir, machine_info  # noqa: E402

LLAMA_SERVER = Path.home() / ".cache" / "sentinel" / "peers" / "llama.cpp" / "build" / "bin" / "llama-server"


class Process:
    """A server process; `port` is read from its log (Sentinel prints it, llama-server is given one)."""

    def __init__(self, cmd: list[str], ready: str, url: str | None = None):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.log: list[str] = []
        self.url = url
        event = threading.Event()

        def read():
            for line in self.p.stdout:
                self.log.append(line)
                m = re.search(r"listening on (http://[\d.]+:\d+)", line)
                if m and self.url is None:
                    self.url = m.group(1)
                if re.search(ready, line):
                    event.set()
            event.set()

        threading.Thread(target=read, daemon=True).start()
        if not event.wait(180) or self.p.poll() is not None:
            self.p.kill()
            sys.exit(f"bench: {' '.join(cmd)} did not start:\n{''.join(self.log[-30:])}")

    def stop(self):
        self.p.terminate()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()


def one_request(client: openai.OpenAI, prompt: list[int], n_out: int, extra: dict) -> dict:
    start = time.perf_counter()
    times = []
    # cache_prompt false: llama-server would otherwise keep each slot's last prompt and skip reading it
    # again when a later cell sends the same one (Sentinel runs with --cache-mib 0 for the same reason).
    stream = client.completions.create(model="any", prompt=prompt, max_tokens=n_out, temperature=0, stream=True,
                                       extra_body={"ignore_eos": True, "cache_prompt": False, **extra})
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            times.append(time.perf_counter())
    end = time.perf_counter()
    if not times:
        raise RuntimeError("no tokens streamed")
    ttft = times[0] - start
    # Chunks can carry several tokens (held-back UTF-8); spread the decode time over n_out - 1.
    tpot = (times[-1] - times[0]) / max(1, n_out - 1)
    return {"ttft": ttft, "tpot": tpot, "seconds": end - start}


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_cell(url: str, prompts: list[list[int]], concurrency: int, n_out: int, extra: dict) -> dict:
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=1800)
    one_request(client, prompts[0][:64], 4, extra)  # warm-up, excluded
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: one_request(client, p, n_out, extra), prompts))
    wall = time.perf_counter() - start
    ttft = [r["ttft"] for r in results]
    tpot = [r["tpot"] for r in results]
    return {"requests": len(results), "wall_s": wall, "requests_per_s": len(results) / wall,
            "output_tokens_per_s": len(results) * n_out / wall,
            "ttft_p50_s": statistics.median(ttft), "ttft_p99_s": percentile(ttft, 0.99),
            "tpot_p50_ms": 1000 * statistics.median(tpot), "tpot_p99_ms": 1000 * percentile(tpot, 0.99)}


def table(path: str) -> str:
    """The markdown table docs/server.md publishes, from the records of one run, with where it ran."""
    rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]
    m = rows[0]["machine"]
    runs = sorted({f"{r['machine']['git_rev']}{'+dirty' if r['machine']['git_dirty'] else ''} "
                   f"({r['machine']['date'].replace('T', ' ')[:16]}, {'Sentinel' if r['engine'] == 'sentinel' else 'llama.cpp'})"
                   for r in rows})
    lines = [f"{m['cpu']}, {m['nproc']} cores, {m['threads']} thread(s) per engine; prompts of "
             f"{rows[0]['prompt_tokens']:,} tokens, {rows[0]['output_tokens']} output tokens; run at revision "
             f"{', '.join(runs)}.", "",
             "| engine, cache | concurrency | requests/s | output tok/s | TTFT p50 | TTFT p99 | TPOT p50 | TPOT p99 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        engine = "Sentinel" if r["engine"] == "sentinel" else "llama.cpp `llama-server`"
        lines.append(f"| {engine}, {r['method']} | {r['concurrency']} | {r['requests_per_s']:.3f} | "
                     f"{r['output_tokens_per_s']:.1f} | {r['ttft_p50_s']:.1f} s | {r['ttft_p99_s']:.1f} s | "
                     f"{r['tpot_p50_ms']:.0f} ms | {r['tpot_p99_ms']:.0f} ms |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", metavar="RECORDS", help="print the markdown table of a finished run's records and exit")
    ap.add_argument("--sentinel", default=str(ROOT / "build" / "sentinel"))
    ap.add_argument("--llama-server", default=str(LLAMA_SERVER))
    ap.add_argument("--model", default=str(default_model_dir() / MODEL_FILE))
    ap.add_argument("--text", default=str(DEFAULT_TEXT))
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--prompt-tokens", type=int, default=1024)
    ap.add_argument("--output-tokens", type=int, default=64)
    ap.add_argument("--requests", type=int, default=0, help="requests per cell (0 = max(4, concurrency))")
    ap.add_argument("--ratios", default="0.5,0.75", help="Sentinel's sentinel-compression ratios beside the full cache")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="sentinel,llama.cpp")
    ap.add_argument("--llama-repack", type=int, choices=(0, 1), default=1,
                    help="llama-server weight repacking (its default 1; 0 where its repacked kernels fault, as "
                         "seen with an illegal instruction on a Xeon with AMX)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "server.jsonl"))
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    levels = [int(c) for c in args.concurrency.split(",")]
    parallel = max(levels)
    ctx = args.prompt_tokens + args.output_tokens + 16
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.threads)

    sentinel = Process([args.sentinel, "serve", "--model", args.model, "--port", "0", "--parallel", str(parallel),
                        "--queue", "64", "--ctx", str(ctx), "-t", str(args.threads), "--cache-mib", "0"],
                       ready="listening on")
    try:
        client = openai.OpenAI(base_url=sentinel.url + "/v1", api_key="none")
        text = Path(args.text).read_text(encoding="utf-8")
        n_cells = max(max(4, c) for c in levels) if not args.requests else args.requests
        # Distinct documents: consecutive windows of the corpus, exactly prompt_tokens ids each.
        import urllib.request
        body = json.dumps({"content": text[: 8 * args.prompt_tokens * (n_cells + 1)]}).encode()
        req = urllib.request.Request(sentinel.url + "/tokenize", data=body, headers={"Content-Type": "application/json"})
        ids = json.loads(urllib.request.urlopen(req).read())["tokens"]
        prompts = [ids[i * args.prompt_tokens:(i + 1) * args.prompt_tokens] for i in range(n_cells)]
        assert all(len(p) == args.prompt_tokens for p in prompts), "the text is too short for that many prompts"
        del client
    except BaseException:
        sentinel.stop()
        raise

    configs = []
    if "sentinel" in args.engines:
        configs.append(("sentinel", "full", {}))
        for r in args.ratios.split(","):
            if r:
                configs.append(("sentinel", f"sentinel {r}", {"compression": {"method": "sentinel", "ratio": float(r)}}))
    with open(args.out, "a") as out:
        def record(engine, method, c, cell):
            row = {"engine": engine, "method": method, "concurrency": c, "prompt_tokens": args.prompt_tokens,
                   "output_tokens": args.output_tokens, **cell, "machine": machine}
            if engine == "llama.cpp":
                row["llama_repack"] = args.llama_repack
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "machine"}),
                  flush=True)
            out.write(json.dumps(row) + "\n")
            out.flush()

        try:
            for engine, method, extra in configs:
                for c in levels:
                    n = args.requests or max(4, c)
                    record(engine, method, c, run_cell(sentinel.url, prompts[:n], c, args.output_tokens, extra))
        finally:
            sentinel.stop()
        if "llama.cpp" in args.engines:
            port = 18080
            llama = Process([args.llama_server, "-m", args.model, "--host", "127.0.0.1", "--port", str(port),
                             "-np", str(parallel), "-c", str(ctx * parallel), "-t", str(args.threads), "-fa", "off",
                             *([] if args.llama_repack else ["--no-repack"])],
                            ready="listening on", url=f"http://127.0.0.1:{port}")
            try:
                for c in levels:
                    n = args.requests or max(4, c)
                    record("llama.cpp", "full", c, run_cell(llama.url, prompts[:n], c, args.output_tokens, {}))
            finally:
                llama.stop()


if __name__ == "__main__":
    main()
