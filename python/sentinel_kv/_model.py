"""Models, their tokenizer, sessions, generation and scoring: the Python face of _core."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import torch

from . import _core
from ._core import Compression
from ._policy import Policy

TokenIds = Union[Sequence[int], torch.Tensor]
Prompt = Union[str, TokenIds]
CompressionLike = Union[Compression, Policy, None]

# The compression keywords every call takes: the CLI's --compress ... options, dashes as underscores.
COMPRESSION_KEYWORDS = (
    "compress", "ratio", "span", "layout", "window", "sinks", "stride_share", "older_rank", "compress_seed", "adapter",
    "kv_dtype",
)


def resolve_compression(compression: CompressionLike, options: dict[str, Any]) -> Compression:
    """One Compression from a call's ``compression=`` argument or its keywords (not both)."""
    unknown = sorted(set(options) - set(COMPRESSION_KEYWORDS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}: neither an option of this call (see "
                        f"its help()) nor a compression option ({', '.join(COMPRESSION_KEYWORDS)})")
    if compression is not None and set(options) - {"kv_dtype"}:
        raise TypeError("give compression=... or the compression keywords "
                        f"({', '.join(sorted(options))}), not both (a Policy takes kv_dtype beside it)")
    if isinstance(compression, Policy):
        return compression.compression(**options)
    if isinstance(compression, Compression):
        return compression
    if compression is not None:
        raise TypeError(f"compression must be a sentinel_kv.Compression or Policy, got {type(compression).__name__}")
    return Compression(**options)


@dataclass
class Completion:
    """What one generation produced."""

    text: str
    tokens: list[int]
    stop_reason: str  # "eos", "stop_string", "max_tokens" or "cancelled"
    n_prompt: int
    logprobs: Optional[torch.Tensor]  # [len(tokens)] float32 with logprobs=True: log p(token) under the model
    prefill_seconds: float
    decode_steps: int
    decode_seconds: float

    @property
    def decode_tokens_per_second(self) -> float:
        return self.decode_steps / self.decode_seconds if self.decode_seconds > 0 else 0.0

    @classmethod
    def from_core(cls, r: dict) -> "Completion":
        return cls(text=r["text"].decode("utf-8", errors="replace"), tokens=list(r["tokens"]),
                   stop_reason=r["stop_reason"], n_prompt=r["n_prompt"], logprobs=r["logprobs"],
                   prefill_seconds=r["prefill_seconds"], decode_steps=r["decode_steps"],
                   decode_seconds=r["decode_seconds"])


@dataclass
class Score:
    """A text read under a compression, token by token (``sentinel ppl``'s numbers and more). The
    tensors are inference tensors (made under torch.inference_mode): clone() to modify in place."""

    ids: list[int]          # [n] the tokens read (the text encoded with BOS)
    logprobs: torch.Tensor  # [n-1] float32: log p(ids[i] | what the cache kept of ids[:i]), i = 1..n-1
    greedy: torch.Tensor    # [n-1] bool: ids[i] was the model's top prediction
    kl: Optional[torch.Tensor]  # [n-1] float32 with kl=True: KL(uncompressed dense model || this run)
    ppl: float
    nll: float              # -sum(logprobs)
    n_scored: int
    n_windows: int
    achieved_ratio: float   # 1 - entries kept / tokens read, over the windows' ends
    peak_kv_bytes: int
    seconds: float          # the run's own time (the reference's passes excluded)
    reference_ppl: Optional[float] = None
    mean_kl: Optional[float] = None
    top1_agreement: Optional[float] = None


class Tokenizer:
    """The model's own tokenizer (Hugging Face's behaviour to the token) and chat template."""

    def __init__(self, core: _core.Model):
        self._core = core

    def encode(self, text: str, add_bos: bool = True, special: bool = True) -> list[int]:
        """Text to ids. ``add_bos`` adds BOS when the model's tokenizer does; ``special`` parses
        special-token text such as ``<|im_start|>`` into its id (as transformers does)."""
        return self._core.encode(text, add_bos, special)

    def decode(self, ids: TokenIds, skip_special: bool = False) -> str:
        return self._core.decode(ids, skip_special).decode("utf-8", errors="replace")

    def apply_chat_template(self, messages: Sequence[dict], add_generation_prompt: bool = True,
                            tokenize: bool = False) -> Union[str, list[int]]:
        """The model's chat template over ``[{"role": ..., "content": ...}, ...]``, as transformers'
        apply_chat_template; ``tokenize=True`` returns ids with BOS exactly once."""
        text, needs_bos = self._core.apply_chat_template(list(messages), add_generation_prompt)
        return self._core.encode(text, needs_bos, True) if tokenize else text

    @property
    def bos_id(self) -> Optional[int]:
        return self._core.bos_id

    @property
    def eos_id(self) -> Optional[int]:
        return self._core.eos_id

    @property
    def stop_ids(self) -> list[int]:
        """Ids that end generation: EOS and the end-of-turn tokens."""
        return self._core.stop_ids

    @property
    def n_vocab(self) -> int:
        return self._core.n_vocab

    @property
    def chat_template(self) -> str:
        return self._core.chat_template


def _generation_args(max_tokens: int, temperature: float, top_k: int, top_p: float, repetition_penalty: float,
                     seed: int, stop: Union[str, Sequence[str]], ignore_eos: bool, logprobs: bool) -> _core.GenerationArgs:
    return _core.GenerationArgs(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                repetition_penalty=repetition_penalty, seed=seed,
                                stop=[stop] if isinstance(stop, str) else list(stop), ignore_eos=ignore_eos,
                                logprobs=logprobs)


class Stream:
    """Generated text as it becomes final, piece by piece. Leaving the loop stops the engine:
    each piece is sampled when asked for, nothing runs ahead. ``result`` holds the Completion once
    the stream has ended (or been closed)."""

    def __init__(self, core: _core.TokenStream):
        self._core = core

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return self._core.__next__()

    def close(self) -> None:
        self._core.close()

    @property
    def result(self) -> Completion:
        return Completion.from_core(self._core.result)

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Session:
    """One sequence read incrementally under a compression: append tokens, read the logits, see
    which positions the cache kept, save it to a state file (the CLI's and the server's format),
    fork it to ask one compressed document many questions, generate from it."""

    def __init__(self, model: "Model", core: _core.Session):
        self._model = model
        self._core = core

    def append(self, ids: Union[str, TokenIds], logits: str = "last") -> Optional[torch.Tensor]:
        """Reads tokens (or text, encoded with BOS when the session is empty). Returns the logits
        of the last token [n_vocab] ("last"), of every token [n, n_vocab] ("all"), or None."""
        return self._core.append(self._model._ids(ids, add_bos=self._core.n_tokens == 0), logits)

    @property
    def logits(self) -> Optional[torch.Tensor]:
        """[n_vocab] float32 logits of the last appended token (the engine's tensor, no copy)."""
        return self._core.logits

    @property
    def tokens(self) -> list[int]:
        """The ordinary tokens read so far."""
        return self._core.tokens

    @property
    def positions(self) -> torch.Tensor:
        """[entries] int64: the positions the KV cache holds now (compression evicted the rest)."""
        return self._core.positions

    @property
    def stats(self) -> dict:
        """tokens_read, entries, entries_evicted, kv_bytes, kv_bytes_uncompressed, peak_kv_bytes, achieved_ratio."""
        return self._core.stats

    @property
    def kv_bytes(self) -> int:
        return self._core.stats["kv_bytes"]

    @property
    def compression(self) -> Compression:
        return self._core.compression

    def generate(self, prompt: Prompt, *, max_tokens: int = 128, temperature: float = 0.0, top_k: int = 0,
                 top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
                 stop: Union[str, Sequence[str]] = (), ignore_eos: bool = False, logprobs: bool = False) -> Completion:
        """Continues the session with ``prompt`` and generates; the session keeps what it read."""
        ids = self._model._ids(prompt, add_bos=self._core.n_tokens == 0)
        return Completion.from_core(_core.generate(self._core, ids, _generation_args(
            max_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, ignore_eos, logprobs)))

    def stream(self, prompt: Prompt, *, max_tokens: int = 128, temperature: float = 0.0, top_k: int = 0,
               top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
               stop: Union[str, Sequence[str]] = (), ignore_eos: bool = False, logprobs: bool = False) -> Stream:
        """As generate(), as an iterator of text pieces."""
        ids = self._model._ids(prompt, add_bos=self._core.n_tokens == 0)
        return Stream(_core.stream(self._core, ids, _generation_args(
            max_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, ignore_eos, logprobs)))

    def save(self, path: Union[str, os.PathLike]) -> int:
        """Writes the session state file (as ``sentinel generate --save-state``); returns its bytes."""
        return self._core.save(os.fspath(path))

    def fork(self) -> "Session":
        """An independent copy that continues from here (the cache is copied, not re-read)."""
        return Session(self._model, self._core.fork())

    def close(self) -> None:
        """Frees the cache now; the session refuses every call after."""
        self._core.close()

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.closed:
            return "Session(closed)"
        s = self.stats
        return (f"Session({self.compression!r}, {s['tokens_read']} tokens read, {s['entries']} entries, "
                f"{s['kv_bytes']} KV bytes)")


class Model:
    """A loaded model: generate, score, or open sessions, each under any compression."""

    def __init__(self, path: Optional[Union[str, os.PathLike]] = None, *, dtype: str = "float32",
                 backend: str = "auto", kv_dtype: str = "auto", threads: int = 0,
                 chat_template_file: Optional[str] = None):
        self._core = _core.Model(None if path is None else os.fspath(path), dtype=dtype, backend=backend,
                                 kv_dtype=kv_dtype, threads=threads, chat_template_file=chat_template_file)
        self.tokenizer = Tokenizer(self._core)

    @property
    def name(self) -> str:
        return self._core.name

    @property
    def path(self) -> str:
        return self._core.path

    @property
    def n_vocab(self) -> int:
        return self._core.n_vocab

    @property
    def n_ctx(self) -> int:
        """The context length the model was trained with."""
        return self._core.n_ctx

    @property
    def n_layer(self) -> int:
        return self._core.n_layer

    @property
    def architecture(self) -> str:
        return self._core.architecture

    @property
    def backend(self) -> str:
        """Which path computes: quantized kernels (and their instruction set) or dense."""
        return self._core.backend

    def _ids(self, prompt: Union[str, TokenIds], add_bos: bool = True, special: bool = True) -> Union[list[int], torch.Tensor]:
        return self._core.encode(prompt, add_bos, special) if isinstance(prompt, str) else prompt

    def _prompt_ids(self, prompt: Prompt, chat: bool, system: Optional[str]) -> Union[list[int], torch.Tensor]:
        """A generating call's prompt as ids: with chat=True a text prompt is the user's message in
        the model's chat template (after ``system``)."""
        if not (chat and isinstance(prompt, str)):
            return self._ids(prompt)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)

    def session(self, compression: CompressionLike = None, **compress_options: Any) -> Session:
        """An empty session under a compression (keywords as the CLI's: compress="sentinel", ratio=0.5, ...)."""
        return Session(self, _core.Session(self._core, resolve_compression(compression, compress_options)))

    def load_session(self, path: Union[str, os.PathLike], compression: CompressionLike = None,
                     **compress_options: Any) -> Session:
        """A session continuing from a state file (saved by Session.save, `sentinel generate
        --save-state` or the server's slots). Without compression options, the file's own."""
        given = resolve_compression(compression, compress_options) if (compression or compress_options) else None
        return Session(self, _core.load_session(self._core, os.fspath(path), given))

    def generate(self, prompt: Union[Prompt, Sequence[Prompt]], *, max_tokens: int = 128, temperature: float = 0.0,
                 top_k: int = 0, top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
                 stop: Union[str, Sequence[str]] = (), ignore_eos: bool = False, logprobs: bool = False,
                 chat: bool = False, system: Optional[str] = None, compression: CompressionLike = None,
                 **compress_options: Any) -> Union[Completion, list[Completion]]:
        """Generates a continuation of one prompt (text or ids), or of each of a list of prompts
        (one forward pass per step for all of them). ``chat=True`` wraps text prompts in the
        model's chat template as the user's message (after ``system``). Greedy unless temperature > 0."""
        prompts, batch = _prompts(prompt)
        ids = [self._prompt_ids(p, chat, system) for p in prompts]
        args = _generation_args(max_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, ignore_eos,
                                logprobs)
        chosen = resolve_compression(compression, compress_options)
        if not batch:
            return Completion.from_core(_core.generate(_core.Session(self._core, chosen), ids[0], args))
        return [Completion.from_core(r) for r in _core.generate_batch(self._core, ids, chosen, args)]

    def stream(self, prompt: Prompt, *, max_tokens: int = 128, temperature: float = 0.0, top_k: int = 0,
               top_p: float = 1.0, repetition_penalty: float = 1.0, seed: int = 0,
               stop: Union[str, Sequence[str]] = (), ignore_eos: bool = False, logprobs: bool = False,
               chat: bool = False, system: Optional[str] = None, compression: CompressionLike = None,
               **compress_options: Any) -> Stream:
        """As generate() for one prompt, as an iterator of text pieces: ``for piece in model.stream(...)``."""
        ids = self._prompt_ids(prompt, chat, system)
        session = _core.Session(self._core, resolve_compression(compression, compress_options))
        return Stream(_core.stream(session, ids, _generation_args(
            max_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, ignore_eos, logprobs)))

    def score(self, text: Union[str, TokenIds], *, ctx: Optional[int] = None, stride: Optional[int] = None,
              chunk: Optional[int] = None, kl: bool = False, progress: Union[bool, Callable[[int, int], None]] = False,
              compression: CompressionLike = None, **compress_options: Any) -> Score:
        """Reads a text (encoded with BOS, special-token text left as text, as `sentinel ppl`) or
        token ids under a compression and returns every token's log-probability.

        ``ctx=None`` reads it all as one sequence; ``ctx=N`` uses sliding windows of N tokens every
        ``stride`` (default N) tokens, each token scored once, as `sentinel ppl --ctx N --stride S`.
        ``chunk`` tokens are read per forward pass (1 = pure decoding; policies that evict by
        attention decide between passes); None reads as `sentinel ppl` without --chunk: 16 for
        those policies (h2o, tova, the heavy sentinel layout), 512 for the others. ``kl=True`` also reads each window with the
        uncompressed dense float32 model and returns the per-token KL divergence from it."""
        ids = self._ids(text, add_bos=True, special=False)
        callback = _progress_callback(progress)
        r = self._core.score(ids, resolve_compression(compression, compress_options), ctx=ctx, stride=stride,
                             chunk=chunk, kl=kl, progress=callback)
        if hasattr(callback, "close"):
            callback.close()
        return Score(ids=ids.tolist() if isinstance(ids, torch.Tensor) else list(ids), logprobs=r["logprobs"], greedy=r["greedy"], kl=r["kl"], ppl=r["ppl"], nll=r["nll"],
                     n_scored=r["n_scored"], n_windows=r["n_windows"], achieved_ratio=r["achieved_ratio"],
                     peak_kv_bytes=r["peak_kv_bytes"], seconds=r["seconds"], reference_ppl=r.get("reference_ppl"),
                     mean_kl=r.get("mean_kl"), top1_agreement=r.get("top1_agreement"))

    def __repr__(self) -> str:
        return f"Model({self.name!r}, {self.architecture}, {self.backend})"


def load(path: Optional[Union[str, os.PathLike]] = None, **options: Any) -> Model:
    """Loads a model: a .gguf file or a Hugging Face folder; None = the default model
    (SmolLM2-135M-Instruct, fetched by scripts/setup.sh). Options: dtype ("float32" or "bfloat16"),
    backend ("auto", "quantized", "dense"), kv_dtype ("auto", "f32", "f16", "bf16", "q8_0"),
    threads (0 = all cores), chat_template_file."""
    return Model(path, **options)


def _prompts(prompt: Any) -> tuple[list, bool]:
    """The prompts of a generate() call and whether they are a batch. One prompt: text, a 1-D
    tensor or a sequence of ints; a batch: a 2-D tensor [B, T] or a sequence of prompts."""
    if isinstance(prompt, str):
        return [prompt], False
    if isinstance(prompt, torch.Tensor):
        return (list(prompt), True) if prompt.dim() == 2 else ([prompt], False)
    items = list(prompt)  # once: the argument may be an iterator
    if items and not isinstance(items[0], numbers.Integral) and not (
            isinstance(items[0], torch.Tensor) and items[0].dim() == 0):
        return items, True
    return [[int(i) for i in items]], False


class _TqdmProgress:
    """score(progress=True): a bar over the windows when tqdm is installed."""

    def __init__(self):
        from tqdm.auto import tqdm
        self._tqdm = tqdm
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=total, unit="window")
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _progress_callback(progress: Union[bool, Callable[[int, int], None]]) -> Optional[Callable[[int, int], None]]:
    if callable(progress):
        return progress
    if not progress:
        return None
    try:
        return _TqdmProgress()
    except ImportError:
        return None
