"""lm-evaluation-harness on Sentinel (python/sentinel_kv/harness.py): the `sentinel-kv` model runs
the offline WikiText task uncompressed and compressed, and the harness's numbers are the package's
own Model.score() on the same tokens.

One WikiText-2 test article keeps each evaluation to seconds on two cores: 634 tokens, one window
(no rolling-window arithmetic to compare), and longer than score()'s 512-token chunk, between
which h2o evicts."""
import math

import pytest

lm_eval = pytest.importorskip(
    "lm_eval", reason="lm-evaluation-harness is not installed: pip install -r python/requirements-lm-eval.txt")

import sentinel_kv as skv  # noqa: E402
from conftest import SHARED_DATA, THREADS  # noqa: E402
from sentinel_kv import harness  # noqa: E402  (registers the sentinel-kv model)

TASK = "sentinel_wikitext"
ARTICLE = 14
H2O_HALF = {"compress": "h2o", "ratio": 0.5}


@pytest.fixture(scope="module")
def tasks():
    return harness.task_manager(data_dir=SHARED_DATA, include_defaults=False)


def evaluate(tasks, compression):
    model_args = ",".join(f"{key}={value}" for key, value in {"threads": THREADS, **compression}.items())
    return lm_eval.simple_evaluate(model="sentinel-kv", model_args=model_args, tasks=[TASK], task_manager=tasks,
                                   samples={TASK: [ARTICLE]}, log_samples=True)


@pytest.fixture(scope="module")
def uncompressed(tasks):
    return evaluate(tasks, {})


@pytest.fixture(scope="module")
def compressed(tasks):
    return evaluate(tasks, H2O_HALF)


def word_perplexity(results):
    return results["results"][TASK]["word_perplexity,none"]


def test_word_perplexity_is_plausible(uncompressed, compressed):
    # The default model has 135M parameters: tens on Wikipedia text, far from 1 (a leak of the
    # target) and from the vocabulary size (garbage).
    for results in (uncompressed, compressed):
        assert math.isfinite(word_perplexity(results))
        assert 5 < word_perplexity(results) < 200


def test_compression_reaches_every_request(uncompressed, compressed):
    assert word_perplexity(compressed) != word_perplexity(uncompressed)
    assert compressed["config"]["achieved_ratio"] > 0.25
    assert uncompressed["config"]["achieved_ratio"] == 0


@pytest.mark.parametrize("compression", [{}, H2O_HALF], ids=["uncompressed", "h2o-0.5"])
def test_harness_loglikelihood_is_score(compression, uncompressed, compressed, model):
    results = compressed if compression else uncompressed
    (sample,) = results["samples"][TASK]
    (text,) = sample["arguments"][0]
    tokenizer = model.tokenizer
    # The harness's rolling request: the article's tokens after one prefix token (BOS, else EOS).
    prefix = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id
    ids = [prefix] + tokenizer.encode(text, add_bos=False)
    assert len(ids) <= model.n_ctx + 1, "the article must fit one window for this comparison"
    # Neither gives a chunk: both read as `sentinel ppl` does (16 tokens per pass for h2o, 512 uncompressed).
    expected = float(model.score(ids, compression=skv.Compression(**compression)).logprobs.double().sum())
    assert sample["resps"][0][0] == pytest.approx(expected, rel=1e-4)
