"""Pieces the benchmarks share: machine and revision, prompts of an exact token count, statistics."""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_dir() -> Path:
    home = os.environ.get("SENTINEL_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sentinel")
    return Path(home) / "models"


# The instruction sets Sentinel's kernels choose between at run time (src/kernels/dispatch.cpp), as
# /proc/cpuinfo names them: a record says which of them its machine had.
ISA_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
             "amx_tile", "amx_int8", "amx_bf16")


def cpu_isa() -> dict:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return {name: name in flags for name in ISA_FLAGS}


def machine_info(threads: int) -> dict:
    """Where and how a record was taken: CPU and its instruction sets, threads, revision, the command."""
    cpu = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip() != ""
    except (OSError, subprocess.CalledProcessError):
        rev, dirty = "unknown", False
    info = {"cpu": cpu, "isa": cpu_isa(), "nproc": os.cpu_count(), "threads": threads, "git_rev": rev,
            "git_dirty": dirty, "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "python": platform.python_version(), "date": datetime.datetime.now().isoformat(timespec="seconds")}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        import transformers
        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    return info


def load1() -> float:
    return os.getloadavg()[0]



def cli_tokenize(sentinel: str, model: str, text: str) -> list[int]:
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        out = subprocess.run([sentinel, "tokenize", "--model", model, "--file", path, "--json"],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(path)
    return json.loads(out)["ids"]


def make_prompt(sentinel: str, model: str, source: str, n_tokens: int, cache_dir: Path) -> tuple[str, list[int]]:
    """The shortest-to-find prefix of `source` that Sentinel's tokenizer turns into exactly n_tokens ids."""
    cached = cache_dir / f"prompt-{n_tokens}.txt"
    if cached.exists():
        text = cached.read_text(encoding="utf-8")
        ids = cli_tokenize(sentinel, model, text)
        if len(ids) == n_tokens:
            return text, ids
    count = lambda k: len(cli_tokenize(sentinel, model, source[:k]))  # noqa: E731
    lo, hi = 1, min(len(source), n_tokens * 16)
    if count(hi) < n_tokens:
        sys.exit(f"bench: {source!r:.40} is too short for a {n_tokens}-token prompt")
    while hi - lo > 1:  # largest prefix with at most n_tokens tokens (counts grow with length)
        mid = (lo + hi) // 2
        if count(mid) <= n_tokens:
            lo = mid
        else:
            hi = mid
    for k in [lo] + [lo - d for d in range(1, 32)]:
        ids = cli_tokenize(sentinel, model, source[:k])
        if len(ids) == n_tokens:
            cached.write_text(source[:k], encoding="utf-8")
            return source[:k], ids
    sys.exit(f"bench: found no prefix of exactly {n_tokens} tokens near {lo} characters")


def require_matplotlib() -> None:
    """Stops a benchmark before it starts when the plot at its end could not be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.exit("bench: matplotlib is missing; scripts/setup.sh installs it into ~/.cache/sentinel/venv "
                 "(run this script with ~/.cache/sentinel/venv/bin/python), or pip install -r bench/requirements.txt")


def llama_cpp_bin(*targets: str) -> Path:
    """The folder of llama.cpp's tools, building `targets` first where missing (bench/peers/build_llama_cpp.sh)."""
    out = subprocess.run([str(ROOT / "bench" / "peers" / "build_llama_cpp.sh"), *targets], capture_output=True,
                         text=True, check=True).stdout
    return Path(out.strip().splitlines()[-1])


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
