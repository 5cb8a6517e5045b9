"""Training from Python is `sentinel train` in-process: its options, log, checkpoints, resume and peft export."""
import json

import pytest

import sentinel_kv as skv
from conftest import TINY


@pytest.fixture()
def corpus(tmp_path):
    rows = [" ".join(("the fox" if w % 4 else "a dog") + str((r + w) % 9) for w in range(35)) for r in range(40)]
    path = tmp_path / "train.txt"
    path.write_text("\n".join(rows) + "\n")
    return path


OPTIONS = dict(model=str(TINY), layout="blocks", block=48, batch=2, accum=2, lr=2e-3, warmup=1, lora_rank=4,
               lora_alpha=8, seed=5, threads=1, progress=False)


def test_train_writes_an_adapter_and_reports_every_update(corpus, tmp_path):
    seen = []
    out = tmp_path / "a.safetensors"
    result = skv.train(corpus, out, steps=3, on_step=seen.append, **OPTIONS)
    assert result.finished and out.exists()
    assert [u["step"] for u in seen] == [1, 2, 3] and all(u["steps"] == 3 for u in seen)
    log = [json.loads(line) for line in open(result.log)]
    assert [u["loss"] for u in log] == [u["loss"] for u in seen]
    tiny = skv.load(TINY, backend="dense", threads=1)
    scored = tiny.score("a dog1 the fox2 the fox3 the fox4 a dog5 " * 8, compress="sentinel", ratio=0.5, span=8,
                        adapter=str(out))
    assert scored.ppl > 1


def test_a_stopped_run_resumes_to_the_uninterrupted_losses(corpus, tmp_path):
    straight = skv.train(corpus, tmp_path / "s.safetensors", steps=4, **OPTIONS)
    stopped = skv.train(corpus, tmp_path / "r.safetensors", steps=4, on_step=lambda u: u["step"] < 2, **OPTIONS)
    assert not stopped.finished and len(stopped.updates) == 2
    resumed = skv.train(corpus, tmp_path / "r.safetensors", steps=4, resume=True, **OPTIONS)
    assert resumed.finished
    assert [u["loss"] for u in stopped.updates + resumed.updates] == pytest.approx(
        [u["loss"] for u in straight.updates], rel=1e-6)


def test_bad_training_options_raise_the_clis_message(corpus, tmp_path):
    with pytest.raises(skv.SentinelError, match="--method h2o cannot be trained"):
        skv.train(corpus, tmp_path / "x.safetensors", method="h2o", steps=1, **OPTIONS)
    with pytest.raises(skv.SentinelError, match="--lora-rnak"):
        skv.train(corpus, tmp_path / "x.safetensors", lora_rnak=4, steps=1, **OPTIONS)


def test_export_peft_writes_what_peft_loads(corpus, tmp_path):
    out = tmp_path / "a.safetensors"
    skv.train(corpus, out, steps=1, **OPTIONS)
    line = skv.export_peft(out, tmp_path / "peft", base_model_name_or_path=str(TINY))
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert config["r"] == 4 and "adapter_config.json" in line
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    base = transformers.AutoModelForCausalLM.from_pretrained(TINY)
    assert peft.PeftModel.from_pretrained(base, tmp_path / "peft") is not None
