"""Fixtures of the server tests: the real `sentinel serve` process on a free loopback port (the
server picks it: --port 0, read back from its 'listening on' line), the official openai client,
and raw HTTP for what a client library would refuse to send.

Environment: SENTINEL_CLI (the built binary; default build/sentinel), SENTINEL_SHARED_DATA (the
shared corpora; default ../shared/data beside the repository)."""
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(os.environ.get("SENTINEL_CLI", ROOT / "build" / "sentinel"))
SHARED_DATA = Path(os.environ.get("SENTINEL_SHARED_DATA", ROOT.parent / "shared" / "data"))


class Server:
    """One `sentinel serve` process; stderr is kept for failure messages."""

    def __init__(self, *args, tmp_path=None, env=None):
        if not CLI.exists():
            pytest.fail(f"{CLI} does not exist: build it (cmake --build build --target sentinel_cli) or set SENTINEL_CLI")
        # One model thread by default: the client and the server share two cores in CI, and a
        # thread pool that loses a core to the client waits at every barrier.
        threads = os.environ.get("SENTINEL_TEST_THREADS", "1")
        self.command = [str(CLI), "serve", "--port", "0", "--threads", threads, *map(str, args)]
        self.process = subprocess.Popen(self.command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                        env=None if env is None else {**os.environ, **env})
        self.log = []
        self.port = None
        ready = threading.Event()

        def read():
            for line in self.process.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(120) or self.port is None:
            self.stop()
            pytest.fail("the server did not start: " + " ".join(self.command) + "\n" + "".join(self.log))
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key="none", max_retries=0, timeout=300)

    def post(self, path, body, raw=False, timeout=300):
        """POST JSON (or raw bytes); returns (status, parsed JSON or text)."""
        data = body if raw else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        return self._send(request, timeout)

    def get(self, path, timeout=60):
        return self._send(urllib.request.Request(self.url + path), timeout)

    @staticmethod
    def _send(request, timeout):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def metrics(self):
        status, text = self.get("/metrics")
        assert status == 200
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name.removeprefix("sentinel:")] = float(value)
        return values

    def rss_mib(self):
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture(scope="session")
def slot_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("slots")


@pytest.fixture(scope="session")
def server(slot_dir):
    s = Server("--parallel", 4, "--queue", 16, "--ctx", 4096, "--slot-save-path", slot_dir, "--max-body-kib", 256)
    yield s
    s.stop()
    assert s.process.returncode == 0, "the server did not exit cleanly:\n" + "".join(s.log)


@pytest.fixture(scope="session")
def document():
    """About 600 tokens of WikiText-2 test: long enough that compression shows, short enough for 2 cores."""
    path = SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw"
    if not path.exists():
        pytest.fail(f"{path} is missing: the shared corpora are expected in {SHARED_DATA} (SENTINEL_SHARED_DATA)")
    text = path.read_text(encoding="utf-8")
    start = text.index(" = Robert Boulter = ")
    return text[start:start + 2600]
