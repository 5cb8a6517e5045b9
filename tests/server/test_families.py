"""The server on every model family Sentinel runs, as a user of that family meets it: the tiny
random-weight models of tests/data/families (transformers' code, converted and quantized by
llama.cpp's own tools) served as GGUF files, chat through the model's own template with the
official openai client, under every compression method. The weights are random, so the text is
not checked; the template, the token counts and the compression report are."""
import json
from pathlib import Path

import pytest

from conftest import ROOT, Server

FAMILIES = ROOT / "tests" / "data" / "families"
CASES = [("llama3", "model.q4_k_m.gguf"), ("qwen2", "model.q4_k_m.gguf"), ("qwen3", "model.q4_k_m.gguf"),
         ("gemma3", "model.q4_k_m.gguf")]
METHODS = ["none", "sentinel", "local", "scattered", "strided", "streaming", "h2o", "tova", "sepllm"]


@pytest.fixture(scope="module", params=CASES, ids=[family for family, _ in CASES])
def family_server(request):
    family, file = request.param
    s = Server("--model", FAMILIES / family / file, "--parallel", 2, "--ctx", 2048)
    yield family, s
    s.stop()
    assert s.process.returncode == 0, "the server did not exit cleanly:\n" + "".join(s.log)


def test_chat_uses_the_models_template_under_every_method(family_server):
    family, server = family_server
    expected = json.loads((FAMILIES / family / "expected.json").read_text())
    # The chat prompt tokens are those of the template's rendering, which expected.json holds as
    # transformers' apply_chat_template wrote it; /tokenize counts the same text.
    rendering = next(r for r in expected["chat_template_renderings"] if r["name"] == "two_messages")
    status, tokenized = server.post("/tokenize", {"content": rendering["rendered"], "add_special": False})
    assert status == 200, tokenized
    long_question = " ".join(f"word{i}" for i in range(60))  # ~300 tokens: every method evicts
    for method in METHODS:
        compression = {"method": method, "ratio": 0.0 if method == "none" else 0.5}
        r = server.client.chat.completions.create(
            model="any", messages=rendering["messages"], max_tokens=4, temperature=0,
            extra_body={"compression": compression})
        assert r.choices[0].finish_reason in ("length", "stop"), (family, method)
        assert r.usage.prompt_tokens == len(tokenized["tokens"]), (family, method, "the template's rendering")
        long = server.client.chat.completions.create(
            model="any", messages=[{"role": "user", "content": long_question}], max_tokens=4, temperature=0,
            extra_body={"compression": compression})
        report = long.model_extra["compression"]
        assert report["method"] == method
        by_type = report["kv_bytes_by_layer_type"]
        assert by_type["global"] + by_type["sliding_window"] == report["kv_bytes"]
        if family == "gemma3":
            assert by_type["sliding_window"] > 0, report
        else:
            assert by_type["sliding_window"] == 0, report
        if method != "none":
            assert report["kv_entries"] < report["tokens_seen"], (family, method, report)
