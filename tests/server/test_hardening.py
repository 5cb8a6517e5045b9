"""The server against careless and hostile clients: connections that send half a request and go
quiet, a second server asked for a port in use, requests without the API key. Each test starts its
own `sentinel serve` (the real binary and default model), so what it does to the connections or the
port touches no other test."""
import socket
import subprocess
import time

import openai
import pytest

from conftest import CLI, Server


def test_half_open_connections_do_not_stall_health():
    server = Server("--parallel", 1, "--http-read-timeout", 5)
    try:
        quiet = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # half a header, then nothing
            quiet.append(s)
        # Throughout the seconds those 200 stay open, /health answers within a second every time.
        worst = 0.0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            start = time.monotonic()
            status, body = server.get("/health", timeout=1)
            worst = max(worst, time.monotonic() - start)
            assert status == 200 and body == {"status": "ok"}
        assert worst < 1.0, worst
        # And a real request still gets its answer.
        r = server.client.completions.create(model="any", prompt="The capital of France is", max_tokens=2)
        assert r.usage.completion_tokens == 2
        for s in quiet:
            s.close()
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.log)


def test_a_second_server_on_a_port_in_use_exits_with_an_error():
    first = Server("--parallel", 1)
    try:
        second = subprocess.run([str(CLI), "serve", "--port", str(first.port), "--threads", "1"], capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 1, second.stderr
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr, second.stderr
        assert "listening on" not in second.stderr
        status, _ = first.get("/health")
        assert status == 200
    finally:
        first.stop()


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_api_key_guards_every_route_but_health(how):
    key = "sk-test-0123456789"
    server = Server("--parallel", 1, *(["--api-key", key] if how == "flag" else []),
                    env={"SENTINEL_API_KEY": key} if how == "environment" else None)
    try:
        good = openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)
        r = good.completions.create(model="any", prompt="Hello", max_tokens=1)
        assert r.usage.completion_tokens == 1
        assert [m.id for m in good.models.list()]
        for wrong in ("wrong", key + "x", key[:-1]):
            bad = openai.OpenAI(base_url=server.url + "/v1", api_key=wrong, max_retries=0, timeout=120)
            with pytest.raises(openai.AuthenticationError) as e:
                bad.chat.completions.create(model="any", messages=[{"role": "user", "content": "hi"}], max_tokens=1)
            assert "Authorization: Bearer" in str(e.value)
        # Without any header: every route but /health is refused, the slots and metrics included.
        assert server.get("/health")[0] == 200
        for path in ("/v1/models", "/metrics", "/slots"):
            status, body = server.get(path)
            assert status == 401, (path, body)
            assert body["error"]["type"] == "authentication_error"
        assert server.post("/tokenize", {"content": "hi"})[0] == 401
    finally:
        server.stop()
    assert server.process.returncode == 0, "".join(server.log)


def test_metrics_can_be_left_open_for_a_scraper():
    server = Server("--parallel", 1, "--api-key", "k", "--metrics-without-key")
    try:
        assert server.get("/metrics")[0] == 200
        assert server.get("/v1/models")[0] == 401
    finally:
        server.stop()


def test_slot_files_are_plain_bounded_and_named_without_server_paths(tmp_path, document):
    slots = tmp_path / "slots"
    slots.mkdir()
    (tmp_path / "secret.state").write_bytes(b"SNTLSTATE\0 not a state")
    (slots / "link.state").symlink_to(tmp_path / "secret.state")
    server = Server("--parallel", 1, "--slot-save-path", slots, "--slot-max-files", 1)
    try:
        server.client.completions.create(model="any", prompt=document[:400], max_tokens=2)
        status, body = server.post("/slots/0?action=save", {"filename": "a.state"})
        assert status == 200, body
        # A second file would pass the quota of one: refused with the options that raise it.
        status, body = server.post("/slots/0?action=save", {"filename": "b.state"})
        assert status == 507, body
        assert "--slot-max-files" in body["error"]["message"]
        assert not (slots / "b.state").exists()
        # Saving over the file already there replaces it: within the quota.
        assert server.post("/slots/0?action=save", {"filename": "a.state"})[0] == 200
        # A link in the folder is neither read nor written through.
        for action in ("restore", "save"):
            status, body = server.post(f"/slots/0?action={action}", {"filename": "link.state"})
            assert status == 400 and "symbolic link" in body["error"]["message"], (action, body)
        assert (tmp_path / "secret.state").read_bytes() == b"SNTLSTATE\0 not a state"
        # A damaged file is refused by its name, never by its path on the server.
        (slots / "a.state").write_bytes((slots / "a.state").read_bytes()[:300])
        status, body = server.post("/slots/0?action=restore", {"filename": "a.state"})
        assert status == 400 and "a.state" in body["error"]["message"], body
        assert str(tmp_path) not in body["error"]["message"], body
        status, models = server.get("/v1/models")
        assert "/" not in models["data"][0]["meta"]["adapter"], models
    finally:
        server.stop()


# sentinel in its stream layout: the default heavy layout's plan depends on attention and cannot be saved
@pytest.mark.parametrize("compression", [None, {"method": "sentinel", "ratio": 0.5, "layout": "stream"},
                                         {"method": "streaming", "ratio": 0.5}],
                         ids=["uncompressed", "sentinel", "streaming"])
def test_a_restored_slot_serves_the_same_question_and_a_continuation(tmp_path, document, compression):
    """Saved after a chat, a slot holds the prompt and the answer. Restored by a new server, the
    same question reuses all of its prompt but the last token, and a follow-up that repeats the
    conversation reuses the whole exchange. An uncompressed state is cut at the common prefix; a
    compressed one cannot be, so the save carries its checkpoint (the state before the prompt's
    last token) beside it."""
    question = [{"role": "user", "content": "Summarise this text.\n\n" + document[:1200]}]
    extra = {"compression": compression} if compression else {}
    first = Server("--parallel", 1, "--slot-save-path", tmp_path)
    try:
        answer = first.client.chat.completions.create(model="any", messages=question, max_tokens=8, temperature=0,
                                                      extra_body=extra)
        status, saved = first.post("/slots/0?action=save", {"filename": "chat.state"})
        assert status == 200 and saved["n_checkpoints"] == (1 if compression else 0), saved
    finally:
        first.stop()
    second = Server("--parallel", 1, "--slot-save-path", tmp_path)
    try:
        status, body = second.post("/slots/0?action=restore", {"filename": "chat.state"})
        assert status == 200 and body["n_checkpoints"] == saved["n_checkpoints"], body
        again = second.client.chat.completions.create(model="any", messages=question, max_tokens=8, temperature=0,
                                                     extra_body=extra)
        assert again.choices[0].message.content == answer.choices[0].message.content
        cached = again.usage.prompt_tokens_details.cached_tokens
        assert cached == again.usage.prompt_tokens - 1, again.usage
        follow_up = question + [{"role": "assistant", "content": answer.choices[0].message.content},
                                {"role": "user", "content": "And in one word?"}]
        more = second.client.chat.completions.create(model="any", messages=follow_up, max_tokens=4, temperature=0,
                                                    extra_body=extra)
        assert more.usage.prompt_tokens_details.cached_tokens >= again.usage.prompt_tokens - 1, more.usage
    finally:
        second.stop()
