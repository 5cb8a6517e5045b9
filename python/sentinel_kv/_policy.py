"""Eviction rules written in Python, run by the engine at native speed for everything else.

A :class:`Policy` gives each cached entry a score whenever the cache holds more entries than the
budget leaves room for; the engine keeps the highest-scoring ones and evicts the rest from every
layer, so the memory is really freed. The budget is the one every built-in method gets: after
``n`` tokens the next query sees at most ``ceil((1 - ratio) * n)`` entries, itself included.
"""

from __future__ import annotations

import copy
import math

import torch

from ._core import CacheView, Compression


class Policy:
    """Base class of eviction rules written in Python.

    Subclass it and define :meth:`score`; set ``observes_attention = True`` and define
    :meth:`observe` to receive, after every forward pass, the attention each cached entry got in it
    (summed over layers, heads and the pass's queries). Each sequence gets its own deep copy of the
    policy object, so state kept on ``self`` is per sequence.
    """

    observes_attention: bool = False

    def __init__(self, ratio: float):
        self.ratio = float(ratio)

    def score(self, view: CacheView) -> torch.Tensor:
        """One score per cached entry ([len(view)]); the ``view.keep`` highest stay (ties: older)."""
        raise NotImplementedError(f"{type(self).__name__} must define score(view)")

    def observe(self, positions: torch.Tensor, attention: torch.Tensor) -> None:
        """After every pass: entry positions [n] int64, the attention each received [n] float32."""

    def compression(self, kv_dtype: str = "auto") -> Compression:
        """This policy as a Compression, for the calls that take one."""
        return Compression.custom(self, self.ratio, self.observes_attention, kv_dtype)

    # --- called by the engine ---
    def _new_instance(self) -> "Policy":
        return copy.deepcopy(self)

    def _score(self, view: CacheView) -> torch.Tensor:
        scores = self.score(view)
        return scores if isinstance(scores, torch.Tensor) else torch.as_tensor(scores, dtype=torch.float64)

    def _observe(self, positions: torch.Tensor, attention: torch.Tensor) -> None:
        self.observe(positions, attention)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(ratio={self.ratio})"


class H2O(Policy):
    """H2O (Zhang et al., 2023) in a few lines: half the kept room to the most recent entries, the
    other half (and an odd entry) to those that received the most attention so far. It evicts
    exactly as the built-in ``compress="h2o"`` does, so its perplexity is the same."""

    observes_attention = True

    def __init__(self, ratio: float):
        super().__init__(ratio)
        self.mass = torch.zeros(0, dtype=torch.float64)  # [positions seen] attention received so far

    def observe(self, positions: torch.Tensor, attention: torch.Tensor) -> None:
        if len(positions) and int(positions.max()) >= len(self.mass):
            self.mass = torch.cat([self.mass, torch.zeros(int(positions.max()) + 1 - len(self.mass), dtype=torch.float64)])
        self.mass.index_add_(0, positions, attention.double())

    def score(self, view: CacheView) -> torch.Tensor:
        scores = self.mass[view.positions].clone()
        n_recent = view.keep - (view.keep + 1) // 2  # the heavy half takes the rounding
        if n_recent > 0:
            scores[-n_recent:] = math.inf
        return scores


class Tova(Policy):
    """TOVA (Oren et al., 2024): keep the entries the newest queries attended to most, with H2O's
    budget: the attention of the last forward pass, summed over layers and heads (read one token per
    pass, ``chunk=1``, that is the newest query's). It evicts exactly as the built-in
    ``compress="tova"`` does."""

    observes_attention = True

    def __init__(self, ratio: float):
        super().__init__(ratio)
        self.last: dict[int, float] = {}  # position -> attention received in the last pass

    def observe(self, positions: torch.Tensor, attention: torch.Tensor) -> None:
        self.last = dict(zip(positions.tolist(), attention.double().tolist()))

    def score(self, view: CacheView) -> torch.Tensor:
        return torch.tensor([self.last[p] for p in view.positions.tolist()], dtype=torch.float64)
