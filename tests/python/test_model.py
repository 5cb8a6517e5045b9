"""The package computes what the CLI and transformers compute: logits, perplexity, generation,
streaming, batches and log-probabilities."""
import json
import sys
from pathlib import Path

import pytest
import torch

import sentinel_kv as skv
from conftest import ROOT, TINY, cli_json, run_cli, wiki_text


def test_extension_uses_the_torch_wheels_libtorch():
    """One libtorch in the process: the one the torch wheel loaded, not a copy of our own."""
    maps = Path("/proc/self/maps").read_text()
    libs = {line.split()[-1] for line in maps.splitlines() if "libtorch_cpu.so" in line}
    assert len(libs) == 1, libs
    assert Path(next(iter(libs))).parent == Path(torch.__file__).parent / "lib"


def test_tiny_model_logits_equal_transformers(tiny):
    transformers = pytest.importorskip("transformers")
    reference = transformers.AutoModelForCausalLM.from_pretrained(TINY, torch_dtype=torch.float32).eval()
    ids = tiny.tokenizer.encode("the quick brown fox jumps over the lazy dog, again and again", add_bos=False)
    with torch.no_grad():
        expected = reference(torch.tensor([ids])).logits[0]  # [n, n_vocab]
    logits = tiny.session().append(ids, logits="all")
    assert logits.shape == expected.shape
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)


def test_default_model_greedy_ids_equal_transformers(model):
    """transformers' greedy continuation of the dequantized default model (reference/make_model_fixtures.py)."""
    reference = json.loads((ROOT / "tests" / "data" / "model" / "smollm2-reference.json").read_text())["greedy"][0]
    dense = skv.load(model.path, backend="dense", threads=2)
    out = dense.generate(reference["prompt_ids"], max_tokens=len(reference["greedy_ids"]), ignore_eos=True)
    assert out.tokens == reference["greedy_ids"]


@pytest.mark.parametrize("options", [{}, {"compress": "h2o", "ratio": 0.5}, {"compress": "sentinel", "ratio": 0.5},
                                     {"compress": "sepllm", "ratio": 0.5}])
def test_score_equals_sentinel_ppl(model, tmp_path, options):
    path = tmp_path / "text.txt"
    path.write_text(wiki_text(6000), encoding="utf-8")
    cli_options = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    expected = cli_json("ppl", "--data", str(path), "--ctx", "256", "--stride", "256", "-t", "2", *cli_options)
    got = model.score(path.read_text(encoding="utf-8"), ctx=256, **options)
    assert got.n_scored == expected["scored"]
    assert got.ppl == pytest.approx(expected["ppl"], rel=1e-9)
    assert got.achieved_ratio == pytest.approx(expected["achieved_ratio"], rel=1e-9)
    assert float(-got.logprobs.double().sum()) == pytest.approx(expected["nll"], rel=1e-6)
    assert got.logprobs.shape == got.greedy.shape == (got.n_scored,)


def test_score_kl_against_the_uncompressed_dense_model(model):
    text = wiki_text(3000)
    plain = model.score(text, ctx=256, kl=True)
    squeezed = model.score(text, ctx=256, kl=True, compress="streaming", ratio=0.75)
    assert plain.kl.shape == (plain.n_scored,) and squeezed.kl.shape == (squeezed.n_scored,)
    # The quantized model against its dense float32 self: close; compressed at 0.75: further away.
    assert 0 <= plain.mean_kl < squeezed.mean_kl
    assert float(squeezed.kl.double().mean()) == pytest.approx(squeezed.mean_kl, rel=1e-5)
    assert squeezed.achieved_ratio > 0.6


def test_generate_equals_sentinel_generate(model):
    prompt = "The history of the Roman Empire"
    expected = cli_json("generate", "--prompt", prompt, "-n", "24", "-t", "2", "--ignore-eos", "--compress", "streaming",
                        "--ratio", "0.5")
    got = model.generate(prompt, max_tokens=24, ignore_eos=True, compress="streaming", ratio=0.5)
    assert got.text == expected["text"]
    assert got.stop_reason == "max_tokens" and len(got.tokens) == 24


def test_chat_uses_the_models_template(model):
    ids = model.tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=True)
    assert model.tokenizer.decode(ids).startswith("<|im_start|>")
    out = model.generate("What is 2 + 2?", chat=True, max_tokens=16)
    assert out.n_prompt > 10 and out.text


def test_stream_yields_the_generated_text_and_stops_when_left(model):
    whole = model.generate("Once upon a time", max_tokens=20)
    stream = model.stream("Once upon a time", max_tokens=20)
    assert "".join(stream) == whole.text
    assert stream.result.tokens == whole.tokens
    # Leaving the loop leaves no work behind: the engine sampled only what was asked for.
    stream = model.stream("Once upon a time", max_tokens=20)
    pieces = [next(stream), next(stream)]
    stream.close()
    assert len(stream.result.tokens) <= 3 and stream.result.stop_reason == "cancelled"
    assert whole.text.startswith("".join(pieces))


def test_batch_generates_what_each_prompt_generates_alone(model):
    prompts = ["The capital of France is", "In 1969, the first", "def fibonacci(n):"]
    batch = model.generate(prompts, max_tokens=12, compress="h2o", ratio=0.5)
    alone = [model.generate(p, max_tokens=12, compress="h2o", ratio=0.5) for p in prompts]
    assert [b.tokens for b in batch] == [a.tokens for a in alone]


def test_logprobs_are_the_models_log_probabilities_of_the_sampled_tokens(model):
    prompt = model.tokenizer.encode("Water boils at a temperature of")
    out = model.generate(prompt, max_tokens=8, temperature=0.8, seed=3, logprobs=True, ignore_eos=True)
    scored = model.score(prompt + out.tokens, chunk=1)
    torch.testing.assert_close(out.logprobs, scored.logprobs[-len(out.tokens):], atol=2e-4, rtol=0)


def test_sampling_is_deterministic_for_a_seed(model):
    a = model.generate("Tell me a story", max_tokens=16, temperature=0.9, top_p=0.9, seed=7)
    b = model.generate("Tell me a story", max_tokens=16, temperature=0.9, top_p=0.9, seed=7)
    c = model.generate("Tell me a story", max_tokens=16, temperature=0.9, top_p=0.9, seed=8)
    assert a.tokens == b.tokens and a.tokens != c.tokens


def test_stop_strings_end_the_text_before_them(model):
    out = model.generate("1, 2, 3, 4, 5,", max_tokens=30, stop=[" 8"])
    assert out.stop_reason == "stop_string" and " 8" not in out.text


def test_tokenizer_round_trip_and_cli_ids(model):
    text = "Hello, world! Ünïcödé and <|im_start|> tokens"
    ids = model.tokenizer.encode(text)
    cli = json.loads(run_cli("tokenize", "--text", text, "--json").stdout)
    assert ids == cli["ids"]
    assert model.tokenizer.decode(ids, skip_special=False).endswith(text)


def test_help_documents_the_api():
    for item in (skv.load, skv.Model.generate, skv.Model.score, skv.Session, skv.Policy, skv.train, skv.Compression):
        assert item.__doc__ and len(item.__doc__) > 40, item
