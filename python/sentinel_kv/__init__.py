"""Sentinel from Python: a fast CPU engine for Llama-family models whose KV cache can be compressed.

    import sentinel_kv as skv
    model = skv.load()                                   # the default model (scripts/setup.sh fetches it)
    print(model.generate("The capital of France is", max_tokens=8).text)
    score = model.score(open("book.txt").read(), compress="h2o", ratio=0.5, ctx=1024, kl=True)
    print(score.ppl, score.mean_kl, score.logprobs.shape)

Compression is chosen per call with the CLI's option names (``compress="sentinel", ratio=0.5,
layout="heavy", ...``), or with a :class:`Compression`, or with your own :class:`Policy`. Every bad
value raises :class:`SentinelError` (a ``ValueError``) with the CLI's message. docs/python.md
walks through the API.
"""

import torch  # noqa: F401  (first: the extension links the libtorch this wheel loads)

from . import _core
from ._core import CacheView, Compression, SentinelError
from ._model import Completion, Model, Score, Session, Stream, Tokenizer, load
from ._policy import H2O, Policy, Tova
from ._train import TrainResult, export_peft, train

__all__ = [
    "CacheView",
    "Completion",
    "Compression",
    "H2O",
    "Model",
    "Policy",
    "Score",
    "SentinelError",
    "Session",
    "Stream",
    "Tokenizer",
    "Tova",
    "TrainResult",
    "export_peft",
    "load",
    "train",
]
__version__ = "0.1.0"
