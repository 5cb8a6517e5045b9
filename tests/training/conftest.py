"""Shared pieces of the training tests: the built CLI, the tiny Hugging Face model of tests/data/tiny,
training text from the shared corpora, free ports for rendezvous, and reading adapters and logs.

Environment: SENTINEL_CLI (default build/sentinel), SENTINEL_SHARED_DATA (default ../shared/data)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("SENTINEL_CLI", ROOT / "build" / "sentinel"))
SHARED_DATA = Path(os.environ.get("SENTINEL_SHARED_DATA", ROOT.parent / "shared" / "data"))
TINY = ROOT / "tests" / "data" / "tiny" / "hf"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # torchrun, from this interpreter's torch


def cli():
    if not CLI.exists():
        pytest.fail(f"{CLI} does not exist: build it (cmake --build build --target sentinel_cli) or set SENTINEL_CLI")
    return str(CLI)


@pytest.fixture(scope="session")
def train_text(tmp_path_factory):
    """The first 60 kB of WikiText-2 valid: enough 64-token sequences for a few updates."""
    source = SHARED_DATA / "wikitext-2-raw" / "wiki.valid.raw"
    if not source.exists():
        pytest.fail(f"{source} is missing; set SENTINEL_SHARED_DATA to the shared corpora")
    path = tmp_path_factory.mktemp("data") / "train.txt"
    path.write_bytes(source.read_bytes()[:60000])
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process_env():
    """This environment without a launcher's variables (ctest may run under one)."""
    env = dict(os.environ)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_USE_AGENT_STORE"):
        env.pop(name, None)
    return env


def run(command, env=None, timeout=600):
    result = subprocess.run(command, capture_output=True, text=True, env=env or single_process_env(), timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, command))} failed ({result.returncode}):\n{result.stderr[-3000:]}"
    return result


def read_log(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines() if '"loss"' in line]
