"""Adapters that Hugging Face loads without any code of ours: `sentinel train --peft-dir` (and
`sentinel export`) write a folder that PeftModel.from_pretrained loads on the transformers model of
the tiny fixture, giving the log-likelihood `sentinel ppl --adapter` computes; a --full fine-tune's
file loads with --adapter and matches the same weights loaded into transformers."""
import json
import math

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from conftest import TINY, cli, run

N_TOKENS = 200


def train(data, out, extra=()):
    # A high learning rate so that the adapter moves the log-likelihood far beyond the tolerance.
    run([cli(), "train", str(data), "-m", str(TINY), "--layout", "stream", "--seq-len", "64", "--span-range", "4:8",
         "--sinks", "2", "--batch", "2", "--accum", "1", "--steps", "3", "--lr", "5e-3", "--seed", "1", "-t", "1",
         "--max-tokens", "4000", "-o", str(out), *extra])


def sentinel_nll(data, adapter=None, backend=()):
    """Total next-token NLL of the first N_TOKENS tokens, one window, from `sentinel ppl`."""
    command = [cli(), "ppl", "-m", str(TINY), "--data", str(data), "--max-tokens", str(N_TOKENS), "--ctx", str(N_TOKENS),
               "--stride", str(N_TOKENS), "--json", "-t", "1", *backend]
    if adapter is not None:
        command += ["--adapter", str(adapter)]
    result = json.loads(run(command).stdout)
    assert result["tokens"] == N_TOKENS and result["scored"] == N_TOKENS - 1
    return result["nll"]


def token_ids(data):
    ids = json.loads(run([cli(), "tokenize", "-m", str(TINY), "-f", str(data), "--json"]).stdout)["ids"]
    return torch.tensor([ids[:N_TOKENS]])


def hf_nll(model, ids, n_vocab):
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1, :n_vocab].float()  # the base vocabulary, as ours
    return torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="sum").item()


def hf_model():
    return AutoModelForCausalLM.from_pretrained(TINY, torch_dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def trained(train_text, tmp_path_factory):
    folder = tmp_path_factory.mktemp("peft")
    adapter, peft_dir = folder / "tiny.st", folder / "peft"
    train(train_text, adapter, ["--peft-dir", str(peft_dir), "--peft-base", str(TINY)])
    return adapter, peft_dir


def test_peft_loads_the_exported_folder_and_gets_our_log_likelihood(trained, train_text):
    adapter, peft_dir = trained
    config = json.loads((peft_dir / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 16 and config["lora_alpha"] == 32
    assert sorted(config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]

    ids = token_ids(train_text)
    base = hf_model()
    n_vocab = base.get_input_embeddings().weight.shape[0]
    base_nll = hf_nll(base, ids, n_vocab)
    assert base_nll == pytest.approx(sentinel_nll(train_text, adapter="none"), abs=2e-3)

    # The README's recipe, as a user would follow it: rows first, then peft.
    rows = load_file(str(peft_dir / "sentinel_embeddings.safetensors"))["sentinel_embeddings"]
    assert rows.shape == (2, base.config.hidden_size)
    model = hf_model()
    model.resize_token_embeddings(n_vocab + 2)
    with torch.no_grad():
        model.get_input_embeddings().weight[n_vocab:] = rows
    model = PeftModel.from_pretrained(model, str(peft_dir)).eval()
    tuned_nll = hf_nll(model, ids, n_vocab)

    ours = sentinel_nll(train_text, adapter=adapter)
    assert tuned_nll == pytest.approx(ours, abs=2e-3), (tuned_nll, ours)
    assert abs(tuned_nll - base_nll) > 0.5, "the adapter barely moved the model: the comparison would prove nothing"
    assert torch.equal(load_file(str(adapter))["sentinel_embeddings"], rows)
    assert "PeftModel.from_pretrained" in (peft_dir / "README.md").read_text()


def test_export_writes_the_same_folder_from_an_adapter_file(trained, tmp_path):
    adapter, peft_dir = trained
    again = tmp_path / "again"
    run([cli(), "export", str(adapter), "--peft-dir", str(again), "--peft-base", str(TINY)])
    first, second = load_file(str(peft_dir / "adapter_model.safetensors")), load_file(str(again / "adapter_model.safetensors"))
    assert first.keys() == second.keys() and len(first) == 2 * 4 * 2  # A and B, 4 projections, 2 layers
    assert all(torch.equal(first[k], second[k]) for k in first)
    peft_config = json.loads((peft_dir / "adapter_config.json").read_text())
    export_config = json.loads((again / "adapter_config.json").read_text())
    assert {k: v for k, v in peft_config.items() if k != "lora_dropout"} == \
        {k: v for k, v in export_config.items() if k != "lora_dropout"}


def test_full_fine_tune_loads_with_adapter(train_text, tmp_path):
    full = tmp_path / "full.st"
    train(train_text, full, ["--full"])
    ours = sentinel_nll(train_text, adapter=full, backend=["--backend", "dense"])
    model = hf_model()
    weights = {k: v for k, v in load_file(str(full)).items() if k != "sentinel_embeddings"}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    assert not unexpected and all("lm_head" in k for k in missing), (missing, unexpected)  # lm_head is tied
    n_vocab = model.get_input_embeddings().weight.shape[0]
    theirs = hf_nll(model, token_ids(train_text), n_vocab)
    assert ours == pytest.approx(theirs, abs=2e-3)
    assert not math.isclose(ours, sentinel_nll(train_text, adapter="none"), abs_tol=0.5)
