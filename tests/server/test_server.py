"""End-to-end tests of `sentinel serve`: the real server and model driven by the official openai
client (and raw HTTP for malformed input). Runs in ctest under the `model` label."""
import concurrent.futures
import json
import math
import subprocess
import time

import openai
import pytest

from conftest import CLI, ROOT, Server

GREEDY = dict(temperature=0, max_tokens=12)


def extra(response, key):
    """A field this server adds to OpenAI's responses (compression, timings)."""
    return response.model_extra[key]


def test_health_models_and_tokenize(server):
    assert server.get("/health") == (200, {"status": "ok"})
    models = server.client.models.list().data
    assert len(models) == 1 and models[0].id.endswith(".gguf")
    status, body = server.post("/tokenize", {"content": "Hello world"})
    assert status == 200 and len(body["tokens"]) == 2
    status, text = server.post("/detokenize", {"tokens": body["tokens"]})
    assert status == 200 and text["content"] == "Hello world"


def test_chat_streamed_equals_non_streamed(server):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    full = server.client.chat.completions.create(model="any", messages=messages, **GREEDY)
    text = full.choices[0].message.content
    assert text and full.choices[0].finish_reason in ("stop", "length")
    assert full.usage.completion_tokens > 0
    assert full.usage.total_tokens == full.usage.prompt_tokens + full.usage.completion_tokens
    stream = server.client.chat.completions.create(model="any", messages=messages, stream=True,
                                                   stream_options={"include_usage": True}, **GREEDY)
    pieces, usage, finish = [], None, None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    assert "".join(pieces) == text
    assert finish == full.choices[0].finish_reason
    assert usage.prompt_tokens == full.usage.prompt_tokens and usage.completion_tokens == full.usage.completion_tokens


def test_completion_echo_logprobs_score_the_prompt(server):
    prompt = "The quick brown fox jumps over the lazy dog."
    n_prompt = len(server.post("/tokenize", {"content": prompt, "add_special": True})[1]["tokens"])
    r = server.client.completions.create(model="any", prompt=prompt, max_tokens=0, echo=True, logprobs=2)
    lp = r.choices[0].logprobs
    assert r.choices[0].text == prompt
    assert len(lp.tokens) == n_prompt == r.usage.prompt_tokens
    assert lp.token_logprobs[0] is None and all(x <= 0 for x in lp.token_logprobs[1:])
    assert all(len(t) == 2 for t in lp.top_logprobs[1:])
    # A greedy continuation's tokens are each the most likely one.
    g = server.client.completions.create(model="any", prompt=prompt, logprobs=1, **GREEDY)
    glp = g.choices[0].logprobs
    assert len(glp.tokens) == g.usage.completion_tokens
    for chosen, top in zip(glp.token_logprobs, glp.top_logprobs):
        assert chosen == pytest.approx(max(top.values()), abs=1e-5)


def test_stop_strings_and_seeded_sampling(server):
    base = dict(model="any", prompt="1, 2, 3, 4,", max_tokens=24)
    r = server.client.completions.create(temperature=0, stop=[" 7"], **base)
    assert " 7" not in r.choices[0].text and r.choices[0].finish_reason == "stop"
    a = server.client.completions.create(temperature=1.0, top_p=0.9, seed=7, **base).choices[0].text
    b = server.client.completions.create(temperature=1.0, top_p=0.9, seed=7, **base).choices[0].text
    assert a == b


def test_compression_per_request_holds_fewer_entries(server, document):
    messages = [{"role": "user", "content": document + "\n\nWho is this text about?"}]
    full = server.client.chat.completions.create(model="any", messages=messages, **GREEDY)
    fc = extra(full, "compression")
    assert fc["method"] == "none" and fc["kv_entries"] == fc["tokens_seen"] and fc["achieved_ratio"] == 0
    for ratio in (0.5, 0.75):
        r = server.client.chat.completions.create(model="any", messages=messages, **GREEDY,
                                                  extra_body={"compression": {"method": "sentinel", "ratio": ratio}})
        c = extra(r, "compression")
        assert c["method"] == "sentinel" and c["tokens_seen"] == fc["tokens_seen"]
        # The stream scheduler spends the budget: it compresses a span of L = 16 tokens (L - 1 entries
        # removed) only once the budget is exceeded, so it sits at most L - 2 entries past the ratio.
        assert ratio - 0.1 < c["achieved_ratio"] <= ratio + 14 / c["tokens_seen"] + 1e-9, c
        assert c["kv_entries"] < (1 - ratio + 0.1) * c["tokens_seen"]
        assert c["kv_bytes"] < fc["kv_bytes"] * (1 - ratio + 0.1)
        assert c["kv_bytes_full"] == fc["kv_bytes"]
        assert r.choices[0].message.content


def test_heavy_layout_keeps_summaries_beside_heavy_hitters(server, document):
    messages = [{"role": "user", "content": document + "\n\nWho is this text about?"}]
    r = server.client.chat.completions.create(
        model="any", messages=messages, **GREEDY,
        extra_body={"compression": {"method": "sentinel", "ratio": 0.5, "layout": "heavy"}})
    c = extra(r, "compression")
    assert c["method"] == "sentinel" and c["layout"] == "heavy"
    assert c["span"] == 48, c  # without a span, the one the heavy adapter was validated at
    # and the older tokens ranked by attention and surprisal, all of their room (its adapter's best reading)
    assert c["stride_share"] == 0.0 and c["older_rank"] == "both", c
    # It evicts by attention down to the budget after every pass, as H2O does: exactly the budget.
    assert c["kv_entries"] <= math.ceil(0.5 * (c["tokens_seen"] + 1)) - 1, c
    assert c["achieved_ratio"] >= 0.5 - 1e-9, c
    assert r.choices[0].message.content
    status, got = server.post("/v1/completions", {"prompt": "x", "compression": {"method": "sentinel", "layout": "wide"}})
    assert status == 400 and "unknown span layout 'wide'" in got["error"]["message"], got
    status, got = server.post("/v1/completions", {"prompt": "x", "compression": {"method": "h2o", "older_rank": "loss"}})
    assert status == 400 and "unknown --older-rank 'loss'" in got["error"]["message"], got


def test_marked_message_is_compressed_and_the_question_is_not(server, slot_dir, document):
    question = "Who is this text about? Answer in one sentence."
    messages = [{"role": "user", "content": document, "compress": True}, {"role": "user", "content": question}]
    r = server.client.chat.completions.create(model="any", messages=messages, **GREEDY,
                                              extra_body={"compression": {"method": "sentinel", "ratio": 0.5,
                                                                          "span": 8}})
    c = extra(r, "compression")
    n_doc = len(server.post("/tokenize", {"content": document})[1]["tokens"])
    # Each marked span of 8 tokens leaves one <CR>: exactly 7 entries fewer per span, and the spans
    # cover half of the document (period (8 - 1) / 0.5 = 14 tokens).
    assert c["marked_spans"] == pytest.approx(n_doc / 14, abs=2)
    assert c["kv_entries"] == c["tokens_seen"] - 7 * c["marked_spans"]
    assert c["kv_entries_evicted"] == 9 * c["marked_spans"]  # the span's 8 tokens and its <CL>
    assert r.choices[0].message.content
    # Saved, the slot's state file names the marked spans in its header.
    status, saved = server.post(f"/slots/{extra(r, 'id_slot')}?action=save", {"filename": "marked.state"})
    assert status == 200, saved
    data = (slot_dir / "marked.state").read_bytes()
    # Version 3: signature, u32 version, u32 record count, then the session's record (u64 header length, header).
    assert data[:10] == b"SNTLSTATE\0" and int.from_bytes(data[10:14], "little") == 3
    assert int.from_bytes(data[14:18], "little") == 1 + saved["n_checkpoints"]
    header = json.loads(data[26:26 + int.from_bytes(data[18:26], "little")])
    assert header["method"] == "sentinel" and len(header["spans"]) == c["marked_spans"]
    assert all(end - begin == 8 for begin, end in header["spans"])


def test_prompt_cache_reuses_the_compressed_document(server, document):
    compression = {"compression": {"method": "sentinel", "ratio": 0.5}}
    doc = {"role": "user", "content": document, "compress": True}
    first = server.client.chat.completions.create(
        model="any", messages=[doc, {"role": "user", "content": "Who is this text about?"}], **GREEDY, extra_body=compression)
    second_messages = [doc, {"role": "user", "content": "Which year is mentioned first?"}]
    second = server.client.chat.completions.create(model="any", messages=second_messages, **GREEDY, extra_body=compression)
    cached = second.usage.prompt_tokens_details.cached_tokens
    # Everything up to the question came from the cache: only the question's tokens were read.
    assert cached > 0.8 * first.usage.prompt_tokens
    assert extra(second, "timings")["prompt_n"] == second.usage.prompt_tokens - cached
    assert second.usage.prompt_tokens - cached < 40
    # And the reused state answers as a fresh computation would.
    fresh = server.client.chat.completions.create(model="any", messages=second_messages, **GREEDY,
                                                  extra_body={**compression, "cache_prompt": False})
    assert fresh.usage.prompt_tokens_details.cached_tokens == 0
    assert fresh.choices[0].message.content == second.choices[0].message.content
    assert extra(fresh, "compression")["kv_entries"] == extra(second, "compression")["kv_entries"]


def test_slot_save_restore_round_trip(server, slot_dir, document, tmp_path):
    head = document[:document.index(" ", 1200)]  # ends before a space: head + " In summary," splits there
    ids = server.post("/tokenize", {"content": head, "add_special": True})[1]["tokens"]
    more = server.post("/tokenize", {"content": " In summary,"})[1]["tokens"]
    assert server.post("/tokenize", {"content": head + " In summary,", "add_special": True})[1]["tokens"] == ids + more
    # The stream layout: a plan fixed by token positions, which a state file can hold.
    body = {"model": "any", "temperature": 0, "ignore_eos": True,
            "compression": {"method": "sentinel", "ratio": 0.5, "layout": "stream"}}
    status, r = server.post("/v1/completions", {**body, "prompt": ids, "max_tokens": 1})
    assert status == 200, r
    slot = r["id_slot"]
    status, saved = server.post(f"/slots/{slot}?action=save", {"filename": "doc.state"})
    assert status == 200 and saved["n_saved"] == len(ids), saved
    # The default heavy layout's plan depends on attention: its slot is refused, naming the layout that can.
    status, heavy = server.post("/v1/completions", {**body, "compression": {"method": "sentinel", "ratio": 0.5},
                                                    "prompt": ids, "max_tokens": 1})
    assert status == 200, heavy
    status, refused = server.post(f"/slots/{heavy['id_slot']}?action=save", {"filename": "heavy.state"})
    assert status == 400 and '"layout": "stream"' in refused["error"]["message"], refused
    assert saved["kv_entries"] < 0.6 * len(ids)
    status, expected = server.post("/v1/completions", {**body, "prompt": ids + more, "max_tokens": 10, "cache_prompt": False})
    assert status == 200
    # A fresh server (empty prompt cache) restores the file and continues from it.
    other = Server("--parallel", 1, "--slot-save-path", slot_dir, "--ctx", 4096)
    try:
        status, restored = other.post("/slots/0?action=restore", {"filename": "doc.state"})
        assert status == 200 and restored["n_restored"] == len(ids), restored
        status, got = other.post("/v1/completions", {**body, "prompt": ids + more, "max_tokens": 10})
        assert status == 200
        assert got["usage"]["prompt_tokens_details"]["cached_tokens"] == len(ids)
        assert got["choices"][0]["text"] == expected["choices"][0]["text"]
        assert got["compression"]["kv_entries"] == expected["compression"]["kv_entries"]
        # The CLI continues the same file to the same text, read as the server read it: the stream
        # layout with the adapter of the server's --layout (heavy, the default).
        prompt = tmp_path / "prompt.txt"
        prompt.write_text(head + " In summary,", encoding="utf-8")
        heavy_adapter = ROOT / "adapters" / "SmolLM2-135M-Instruct.sentinel-heavy.safetensors"
        cli = subprocess.run([str(CLI), "generate", "--prompt-file", str(prompt), "--load-state", str(slot_dir / "doc.state"),
                              "--compress", "sentinel", "--layout", "stream", "--adapter", str(heavy_adapter),
                              "--ratio", "0.5", "--max-tokens", "10", "--temperature", "0",
                              "--ignore-eos", "--json"], capture_output=True, text=True)
        assert cli.returncode == 0, cli.stderr
        result = json.loads(cli.stdout)
        assert result["prompt_tokens_restored"] == len(ids)
        assert result["text"] == expected["choices"][0]["text"]
        # A truncated file is refused, by name.
        data = (slot_dir / "doc.state").read_bytes()
        (slot_dir / "cut.state").write_bytes(data[: len(data) // 2])
        status, err = other.post("/slots/0?action=restore", {"filename": "cut.state"})
        assert status == 400 and "truncated" in err["error"]["message"]
    finally:
        other.stop()


BAD_INPUTS = [
    # (name, path, raw body or JSON, status, part of the message)
    ("malformed JSON", "/v1/chat/completions", b'{"messages": [', 400, "malformed JSON"),
    ("invalid UTF-8", "/v1/completions", b'{"prompt": "\xff\xfe"}', 400, "UTF-8"),
    ("not an object", "/v1/completions", b"[1, 2]", 400, "must be a JSON object"),
    ("empty body", "/v1/completions", b"", 400, "body is empty"),
    ("wrong type", "/v1/chat/completions", {"messages": "hello"}, 400, "'messages' must be a non-empty array"),
    ("unknown field", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temprature": 1}, 400,
     "unknown field 'temprature'"),
    ("absurd max_tokens", "/v1/completions", {"prompt": "x", "max_tokens": 10**12}, 400, "'max_tokens' must be in"),
    ("negative temperature", "/v1/completions", {"prompt": "x", "temperature": -1}, 400, "'temperature' must be in [0, 2]"),
    ("n > 1", "/v1/completions", {"prompt": "x", "n": 3}, 400, "'n' must be 1"),
    ("bad compression", "/v1/completions", {"prompt": "x", "compression": {"method": "gzip"}}, 400,
     "unknown compression method 'gzip'"),
    ("impossible ratio", "/v1/completions", {"prompt": "x", "compression": {"method": "sentinel", "ratio": 0.9, "span": 4}},
     400, "impossible with spans of 4"),
    ("mark without sentinel", "/v1/completions", {"prompt": [{"text": "doc", "compress": True}]}, 400, "needs sentinel"),
    ("token id out of vocabulary", "/v1/completions", {"prompt": [1, 99999999]}, 400, "outside the vocabulary"),
    ("max_tokens past the context", "/v1/completions", {"prompt": "x", "max_tokens": 4096}, 400, "does not fit"),
    ("unknown route", "/v1/embeddings", {"input": "x"}, 404, "no route"),
    ("slot id not a number", "/slots/abc?action=save", {"filename": "x"}, 400, "not a number"),
    ("slot path escape", "/slots/0?action=save", {"filename": "../x"}, 400, "plain file name"),
    ("slot action", "/slots/0?action=delete", {"filename": "x"}, 400, "use save or restore"),
    ("restore missing file", "/slots/0?action=restore", {"filename": "nothing.state"}, 400, "no saved state"),
    ("oversized body", "/v1/completions", b'{"prompt": "' + b"a" * (300 << 10) + b'"}', 413, "larger than"),
]


@pytest.mark.parametrize("name,path,body,status,message", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_clear_4xx(server, name, path, body, status, message):
    got_status, got = server.post(path, body, raw=isinstance(body, bytes))
    assert got_status == status, got
    assert message in got["error"]["message"], got["error"]["message"]
    assert got["error"]["type"] in ("invalid_request_error", "not_found_error")


def test_prompt_longer_than_the_context_is_refused(server):
    status, body = server.post("/v1/completions", {"prompt": "word " * 5000, "max_tokens": 1})
    assert status == 400 and "the context holds 4096" in body["error"]["message"]
    assert server.get("/health")[0] == 200


def test_concurrent_requests_are_batched(server):
    before = server.metrics()
    prompts = [f"Write a list of {k} fruits:" for k in range(3, 11)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda p: server.client.completions.create(
            model="any", prompt=p, temperature=0, max_tokens=16), prompts))
    assert all(r.usage.completion_tokens > 0 for r in results)
    after = server.metrics()
    decodes = after["n_decode_total"] - before["n_decode_total"]
    slot_passes = after["n_busy_slots_per_decode"] * after["n_decode_total"] - \
        before["n_busy_slots_per_decode"] * before["n_decode_total"]
    assert slot_passes / decodes > 1.5, "requests were not decoded together"
    # The same request alone gives the same greedy text as in the batch.
    alone = server.client.completions.create(model="any", prompt=prompts[0], temperature=0, max_tokens=16)
    assert alone.choices[0].text == results[0].choices[0].text


def test_metrics_report_tokens_and_compression(server, document):
    # Its own requests, one plain and one compressed, so that it passes alone or after any others.
    before = server.metrics()
    plain = server.client.completions.create(model="any", prompt="The capital of France is", **GREEDY)
    compressed = server.client.completions.create(model="any", prompt=document, **GREEDY,
                                                  extra_body={"compression": {"method": "sentinel", "ratio": 0.5}})
    m = server.metrics()
    for name in ("prompt_tokens_total", "tokens_predicted_total", "requests_processing", "requests_deferred",
                 "kv_cache_usage_ratio", "kv_bytes_saved_total", "kv_entries_evicted_total", "achieved_ratio",
                 "prompt_tokens_seconds", "predicted_tokens_seconds"):
        assert name in m, name
    generated = plain.usage.completion_tokens + compressed.usage.completion_tokens
    assert m["tokens_predicted_total"] - before["tokens_predicted_total"] == generated
    assert m["prompt_tokens_total"] - before["prompt_tokens_total"] == \
        plain.usage.prompt_tokens + compressed.usage.prompt_tokens
    assert m["kv_entries_evicted_total"] > before["kv_entries_evicted_total"]
    assert m["kv_bytes_saved_total"] > before["kv_bytes_saved_total"]
    assert m["prompt_tokens_seconds"] > 0 and m["predicted_tokens_seconds"] > 0
    # Over every compressed request so far: this one's 0.5, or the 0.5 to 0.75 of the tests before it.
    assert 0.3 < m["achieved_ratio"] < 0.8


def test_full_queue_is_503_and_a_gone_client_frees_its_slot():
    small = Server("--parallel", 1, "--queue", 0, "--ctx", 2048)
    try:
        stream = small.client.completions.create(model="any", prompt="Once upon a time", max_tokens=1500,
                                                 temperature=0.8, stream=True, extra_body={"ignore_eos": True})
        next(iter(stream))  # the only slot is busy now
        with pytest.raises(openai.APIStatusError) as busy:
            small.client.completions.create(model="any", prompt="hi", max_tokens=1)
        assert busy.value.status_code == 503 and "busy" in str(busy.value)
        stream.close()  # the client goes away mid-generation
        deadline = time.time() + 20
        while small.metrics()["requests_cancelled_total"] < 1 and time.time() < deadline:
            time.sleep(0.2)
        assert small.metrics()["requests_cancelled_total"] == 1
        r = small.client.completions.create(model="any", prompt="hi", max_tokens=2, temperature=0)
        assert r.usage.completion_tokens >= 1
        assert small.metrics()["tokens_predicted_total"] < 1500
    finally:
        small.stop()


def test_request_timeout_is_504(server):
    status, body = server.post("/v1/completions", {"prompt": "Once upon a time", "max_tokens": 2000, "timeout": 0.1,
                                                   "temperature": 0.8, "ignore_eos": True})
    assert status == 504 and "timeout" in body["error"]["message"]
