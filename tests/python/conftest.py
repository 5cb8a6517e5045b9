"""Fixtures of the Python package tests: the real extension (the build folder's, PYTHONPATH set by
ctest), the real default model and the tiny random-weight model, the real `sentinel` CLI to compare
with, and the shared corpora.

Environment: SENTINEL_CLI (default build/sentinel), SENTINEL_SHARED_DATA (default ../shared/data
beside the repository)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

import sentinel_kv as skv

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("SENTINEL_CLI", ROOT / "build" / "sentinel"))
SHARED_DATA = Path(os.environ.get("SENTINEL_SHARED_DATA", ROOT.parent / "shared" / "data"))
TINY = ROOT / "tests" / "data" / "tiny" / "hf"
THREADS = 2


def wiki_text(n_chars: int) -> str:
    """The start of WikiText-2's test split, cut at a line end."""
    text = (SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw").read_text(encoding="utf-8")[:n_chars]
    return text[: text.rfind("\n") + 1]


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    if not CLI.exists():
        pytest.fail(f"{CLI} does not exist: build it (cmake --build build) or set SENTINEL_CLI")
    r = subprocess.run([str(CLI), *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        pytest.fail(f"sentinel {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return r


def cli_json(*args: str) -> dict:
    return json.loads(run_cli(*args, "--json").stdout)


@pytest.fixture(scope="session")
def model() -> skv.Model:
    """The default model (scripts/setup.sh fetches it), quantized path, as the CLI runs it."""
    return skv.load(threads=THREADS)


@pytest.fixture(scope="session")
def tiny() -> skv.Model:
    """The tiny random-weight Llama (tests/data/tiny/hf), dense float32: exact against transformers."""
    return skv.load(TINY, backend="dense", threads=THREADS)
