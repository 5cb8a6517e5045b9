"""Bad arguments raise with the CLI's words; misuse (wrong types, closed objects, other threads,
Ctrl-C) raises or waits, never crashes."""
import os
import signal
import threading
import time

import pytest
import torch

import sentinel_kv as skv
from conftest import run_cli, wiki_text

# Values the CLI refuses, as keywords; the message must be the CLI's.
REFUSED = [
    ({"compress": "h2o"}, ["--compress", "h2o"]),
    ({"ratio": 0.5}, ["--ratio", "0.5"]),
    ({"compress": "sentinel", "ratio": 0.5, "span": 5000}, ["--compress", "sentinel", "--ratio", "0.5", "--span", "5000"]),
    ({"compress": "streaming", "ratio": 0.5, "sinks": 10**9}, ["--compress", "streaming", "--ratio", "0.5", "--sinks", str(10**9)]),
    ({"compress": "sentinel", "ratio": 0.97, "span": 16}, ["--compress", "sentinel", "--ratio", "0.97", "--span", "16"]),
    ({"compress": "h2o", "ratio": 0.5, "stride_share": 0.5}, ["--compress", "h2o", "--ratio", "0.5", "--stride-share", "0.5"]),
    ({"compress": "h2o", "ratio": 1.5}, ["--compress", "h2o", "--ratio", "1.5"]),
]


@pytest.mark.parametrize("keywords,options", REFUSED)
def test_refused_with_the_clis_message(keywords, options, tmp_path):
    with pytest.raises(skv.SentinelError) as python:
        skv.Compression(**keywords)
    path = tmp_path / "t.txt"
    path.write_text("hello world " * 50)
    cli = run_cli("ppl", "--data", str(path), *options, check=False)
    assert cli.returncode != 0
    message = str(python.value)
    assert message in cli.stderr, f"python: {message}\ncli: {cli.stderr}"
    assert isinstance(python.value, ValueError)


def test_unknown_keywords_and_mixed_forms_are_type_errors(model):
    with pytest.raises(TypeError, match="rato"):
        model.score("hello world", rato=0.5)
    with pytest.raises(TypeError, match="not both"):
        model.score("hello world", compression=skv.Compression(), ratio=0.5)


def test_token_ids_are_checked(model):
    session = model.session()
    with pytest.raises(TypeError, match="integer token ids"):
        session.append(torch.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="1-D"):
        session.append(torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="not in the vocabulary"):
        session.append([1, model.n_vocab])
    with pytest.raises(ValueError, match="is not a token id"):
        session.append([-1])
    with pytest.raises(ValueError, match="at least one"):
        session.append([])
    assert session.append(torch.tensor([1, 2, 3], dtype=torch.int32)).shape == (model.n_vocab,)


def test_missing_model_file_names_it():
    with pytest.raises(skv.SentinelError, match="no-such-model.gguf"):
        skv.load("/tmp/no-such-model.gguf")


def test_a_session_shared_between_threads_is_serialised(model):
    """Sessions are not thread-safe; the model lock makes concurrent calls wait, not crash."""
    ids = model.tokenizer.encode(wiki_text(3000))[:256]
    session = model.session(compress="streaming", ratio=0.5)
    errors = []

    def feed():
        try:
            for i in range(0, 128, 8):
                session.append(ids[i:i + 8])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=feed) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(session.tokens) == 256


def test_the_gil_is_released_while_the_engine_works(model):
    text = wiki_text(20000)
    ticks = 0
    done = threading.Event()

    def count():
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    start = time.perf_counter()
    model.score(text, ctx=512)
    elapsed = time.perf_counter() - start
    done.set()
    counter.join()
    # Held for the whole call, the GIL would let the counter tick a handful of times at most.
    assert elapsed > 0.5 and ticks > 50, (ticks, elapsed)


def interrupt_after(seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_interrupts_scoring_and_generation_cleanly(model):
    text = wiki_text(60000)  # ~15k tokens: well over a second of work
    timer = interrupt_after(1.0)
    with pytest.raises(KeyboardInterrupt):
        model.score(text, ctx=256)
    timer.join()
    timer = interrupt_after(1.0)
    with pytest.raises(KeyboardInterrupt):
        model.generate("Once upon a time", max_tokens=100000, ignore_eos=True)
    timer.join()
    assert model.generate("Once upon a time", max_tokens=4).tokens  # the model is fine afterwards


class CallsTheEngine(skv.Policy):
    def __init__(self, ratio, model):
        super().__init__(ratio)
        self.model = model

    def __deepcopy__(self, memo):
        return CallsTheEngine(self.ratio, self.model)

    def score(self, view):
        self.model.score("hello there, general")
        return view.positions.double()


def test_a_policy_that_calls_the_engine_is_refused(model):
    with pytest.raises(ValueError, match="called the engine"):
        model.score(wiki_text(1500), ctx=128, compression=CallsTheEngine(0.5, model))


def test_a_failing_adapter_is_refused_every_time(model, tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a safetensors file")
    for _ in range(2):  # nothing is left behind under its name by the first failure
        with pytest.raises(ValueError, match="bogus.safetensors"):
            model.score("hello world, hello world", compress="sentinel", ratio=0.5, adapter=str(bogus))


def test_compression_describes_itself():
    c = skv.Compression(compress="sentinel", ratio=0.5)  # the CLI's default layout: heavy
    assert (c.compress, c.layout, c.span, c.older_rank, c.policy) == ("sentinel", "heavy", 48, "both", None)
    assert c.reads_attention and c.read_chunk == 16
    stream = skv.Compression(compress="sentinel", ratio=0.5, layout="stream")
    assert (stream.span, stream.older_rank, stream.reads_attention, stream.read_chunk) == (16, "attention", False, 512)
    assert skv.Compression().policy is None and "custom H2O(ratio=0.5)" in repr(skv.H2O(0.5).compression())
