"""Eviction rules written in Python: the engine applies their scores at native speed and frees the memory."""
import math

import pytest
import torch

import sentinel_kv as skv
from conftest import wiki_text


@pytest.mark.parametrize("chunk", [1, 16])
def test_python_h2o_gives_the_builtin_perplexity(model, chunk):
    text = wiki_text(2500)  # ~600 tokens: two windows, every pass evicting
    builtin = model.score(text, ctx=320, chunk=chunk, compress="h2o", ratio=0.5)
    python = model.score(text, ctx=320, chunk=chunk, compression=skv.H2O(ratio=0.5))
    assert abs(python.ppl - builtin.ppl) <= 1e-6 * builtin.ppl
    assert python.achieved_ratio == builtin.achieved_ratio
    torch.testing.assert_close(python.logprobs, builtin.logprobs, atol=0, rtol=0)


def test_python_h2o_keeps_the_builtin_positions(model):
    ids = model.tokenizer.encode(wiki_text(2000))[:200]
    builtin = model.session(compress="h2o", ratio=0.75)
    python = model.session(skv.H2O(ratio=0.75))
    for i in range(0, 200, 16):
        builtin.append(ids[i:i + 16])
        python.append(ids[i:i + 16])
        assert python.positions.tolist() == builtin.positions.tolist()


class RecentOnly(skv.Policy):
    """The simplest rule: keep the newest entries."""

    def score(self, view):
        return view.positions.double()


class ByKeyNorm(skv.Policy):
    """Reads the cached keys: keeps the entries whose first-layer keys are largest."""

    def score(self, view):
        keys = view.keys(0)  # [n_head_kv, n, head_dim]
        assert keys.shape[1] == len(view)
        return keys.norm(dim=-1).sum(0)


def test_a_policy_frees_the_budget_it_is_given(model):
    ids = model.tokenizer.encode(wiki_text(3000))[:400]
    session = model.session(RecentOnly(ratio=0.75))
    session.append(ids)
    assert session.positions.tolist() == list(range(400 - len(session.positions), 400))
    assert len(session.positions) == math.ceil(0.25 * 401) - 1
    by_norm = model.session(ByKeyNorm(ratio=0.5))
    by_norm.append(ids)
    assert len(by_norm.positions) == math.ceil(0.5 * 401) - 1


@pytest.mark.parametrize("chunk", [1, 16])
def test_python_tova_gives_the_builtin_perplexity(model, chunk):
    text = wiki_text(2500)
    builtin = model.score(text, ctx=320, chunk=chunk, compress="tova", ratio=0.5)
    python = model.score(text, ctx=320, chunk=chunk, compression=skv.Tova(ratio=0.5))
    assert abs(python.ppl - builtin.ppl) <= 1e-6 * builtin.ppl and builtin.achieved_ratio > 0.45
    torch.testing.assert_close(python.logprobs, builtin.logprobs, atol=0, rtol=0)


class Wrong(skv.Policy):
    def score(self, view):
        return torch.zeros(len(view) + 1)


class Raises(skv.Policy):
    def score(self, view):
        raise RuntimeError("my policy failed")


def test_a_broken_policy_raises_its_error(model):
    with pytest.raises(ValueError, match="one score per cached entry"):
        model.score(wiki_text(2000), ctx=128, compression=Wrong(ratio=0.5))
    with pytest.raises(RuntimeError, match="my policy failed"):
        model.score(wiki_text(2000), ctx=128, compression=Raises(ratio=0.5))
    assert model.score(wiki_text(1000), ctx=128).ppl > 1  # the model still works
