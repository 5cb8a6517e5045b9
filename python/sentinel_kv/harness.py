"""Sentinel in EleutherAI's lm-evaluation-harness: the model `sentinel-kv`, compressed on every request.

    python -m sentinel_kv.harness --model_args compress=h2o,ratio=0.5 --tasks sentinel_wikitext --limit 5

From Python, importing this module registers the model:

    import lm_eval
    from sentinel_kv.harness import task_manager
    results = lm_eval.simple_evaluate(model="sentinel-kv", model_args="compress=sentinel,ratio=0.5",
                                      tasks=["sentinel_wikitext"], task_manager=task_manager(), limit=5)

The compression options of model_args (compress, ratio, span, layout, window, sinks, stride_share,
older_rank, compress_seed, adapter: the CLI's --compress, --ratio, ... under their Python names)
apply to every loglikelihood, loglikelihood_rolling and generate_until request, so any harness task
runs compressed. The tasks in harness_tasks/ run offline on the shared corpora (harness_tasks/utils.py).
"""

import json
import logging
import sys
from pathlib import Path

from lm_eval.__main__ import cli_evaluate
from lm_eval.api.model import TemplateLM
from lm_eval.api.registry import register_model
from lm_eval.models.utils import normalize_gen_kwargs
from lm_eval.tasks import TaskManager
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm import tqdm

import sentinel_kv as skv

TASK_DIR = Path(__file__).resolve().with_name("harness_tasks")
MODEL_NAME = "sentinel-kv"

log = logging.getLogger(__name__)


def task_manager(data_dir=None, include_defaults=True):
    """A TaskManager that finds Sentinel's offline tasks (sentinel_wikitext, sentinel_local, ...)
    beside the harness's own, reading the shared corpora from data_dir (default:
    $SENTINEL_SHARED_DATA, else the checkout's ../shared/data). include_defaults=False indexes only
    Sentinel's tasks, which is quicker."""
    metadata = {} if data_dir is None else {"data_dir": str(data_dir)}
    return TaskManager(include_path=str(TASK_DIR), include_defaults=include_defaults, metadata=metadata)


@register_model(MODEL_NAME)
class SentinelLM(TemplateLM):
    """A sentinel_kv model behind the harness's LM interface.

    model_args: model (a GGUF file or Hugging Face folder; default: the default model), max_length
    (tokens per scored window and per prompt plus generation; default: the model's trained context),
    chunk (tokens per forward pass when scoring; default as `sentinel ppl`: 16 for the compressions
    that evict by attention, 512 for the others), max_gen_toks (256),
    batch_size (prompts per generate() call), seed (of sampled generation), the loading options
    dtype, backend, kv_dtype and threads, and the compression options above.
    TemplateLM turns (context, continuation) pairs into tokens exactly as the harness's own models
    do; this class scores those tokens with Model.score() and generates with Model.generate().
    """

    def __init__(self, model=None, max_length=None, chunk=None, max_gen_toks=256, batch_size=1, seed=0,
                 dtype="float32", backend="auto", kv_dtype="auto", threads=0,
                 device=None, max_batch_size=None, **compression):
        super().__init__()
        # The harness passes device and max_batch_size to every model (its CLI's --device defaults to
        # cuda:0); here backend= picks where the engine runs, and batches have one fixed size.
        del device, max_batch_size
        # The harness's model_args parser reads `none` as None; the compression options mean the word
        # (compress=none, adapter=none). Compression() checks the rest with the CLI's messages.
        self.compression = skv.Compression(**{key: "none" if value is None else value
                                              for key, value in compression.items()})
        self.model = skv.load(model, dtype=dtype, backend=backend, kv_dtype=kv_dtype, threads=threads)
        self.max_length = int(max_length or self.model.n_ctx)
        # Compressions that rank tokens by attention (h2o, tova, heavy sentinel:
        # Compression.reads_attention) evict only between forward passes, so they score a request
        # shorter than chunk uncompressed; chunk=1 reads as generation does. None: as `sentinel ppl`
        # without --chunk (16 for those, 512 for the others, which give the same numbers for every chunk).
        self.chunk = self.compression.read_chunk if chunk is None else int(chunk)
        self.max_gen_toks = int(max_gen_toks)
        self.batch_size = batch_size_from(batch_size)
        self.seed = int(seed)
        self._generate_calls = 0
        self._ratio_weighted_sum = 0.0
        self._tokens_scored = 0

    # ---- tokens: what TemplateLM's shared encoding needs ----

    @property
    def eot_token_id(self):
        return self.model.tokenizer.eos_id

    @property
    def prefix_token_id(self):
        # What an empty context and the first rolling window condition on: BOS, else EOS (the harness's rule).
        tokenizer = self.model.tokenizer
        return tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id

    def tok_encode(self, string, add_special_tokens=None, **kwargs):
        # As the harness's HF model encodes: by default (contexts) BOS where the model's tokenizer adds
        # one, unless the text already starts with BOS's text; none with add_special_tokens=False
        # (continuations, rolling text); special-token text parsed into its id.
        tokenizer = self.model.tokenizer
        if add_special_tokens is None:
            add_special_tokens = tokenizer.bos_id is None or not string.startswith(tokenizer.decode([tokenizer.bos_id]))
        return tokenizer.encode(string, add_bos=add_special_tokens)

    # ---- chat templates: what the harness's --apply_chat_template needs ----

    @property
    def tokenizer_name(self):
        # Part of the harness's cache key for chat-formatted requests.
        return self.model.name

    def chat_template(self, chat_template=False):
        # The model has one template; the harness records it with the results.
        return self.model.tokenizer.chat_template

    def apply_chat_template(self, chat_history, add_generation_prompt=True):
        if not add_generation_prompt:
            # The harness asks for this when a task pre-fills the answer (gen_prefix): Hugging Face's
            # continue_final_message, which would leave the assistant's turn open; this template closes it.
            raise NotImplementedError(f"{MODEL_NAME} cannot continue a pre-filled assistant message (gen_prefix) "
                                      "under --apply_chat_template")
        return self.model.tokenizer.apply_chat_template(chat_history, add_generation_prompt=True)

    # ---- the three request types ----

    def _loglikelihood_tokens(self, requests, disable_tqdm=False):
        results = []
        for request_args, context, continuation in tqdm(requests, desc="loglikelihood", disable=disable_tqdm):
            if len(continuation) > self.max_length:
                raise ValueError(f"a continuation of {len(continuation)} tokens does not fit "
                                 f"max_length={self.max_length}")
            # Left-truncated as the harness's HF model does: the last max_length input tokens, plus
            # the last continuation token, which is predicted but never read.
            ids = (context + continuation)[-(self.max_length + 1):]
            result = self._continuation_logprob(ids, len(continuation))
            self.cache_hook.add_partial("loglikelihood", request_args, result)
            results.append(result)
        return results

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        # The harness's own windows (get_rolling_token_windows + make_disjoint_window, as its HF model
        # uses them), each scored by one score() call from an empty cache, rather than one score() call
        # with ctx=max_length and a stride (`sentinel ppl`'s windows): the harness's first window
        # conditions on the prefix token and its last is refilled to a full max_length of context,
        # so only its own windows give numbers that compare with other models' results for the task.
        results = []
        for request in tqdm(requests, desc="loglikelihood_rolling", disable=disable_tqdm):
            (text,) = request.args
            windows = map(make_disjoint_window, get_rolling_token_windows(
                token_list=self.tok_encode(text, add_special_tokens=False),
                prefix_token=self.prefix_token_id, max_seq_len=self.max_length, context_len=1))
            total = sum(self._continuation_logprob(context + predicted, len(predicted))[0]
                        for context, predicted in windows)
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, total)
            results.append(total)
        return results

    def generate_until(self, requests, disable_tqdm=False):
        results = [None] * len(requests)
        with tqdm(total=len(requests), desc="generate_until", disable=disable_tqdm) as progress:
            for batch in self._generation_batches(requests):
                contexts = [requests[i].args[0] for i in batch]
                texts = self._generate(contexts, requests[batch[0]].args[1])
                for i, text in zip(batch, texts, strict=True):
                    results[i] = text
                    self.cache_hook.add_partial("generate_until", requests[i].args, text)
                progress.update(len(batch))
        return results

    def get_model_info(self):
        """Added to the results' config: which model ran, how it was compressed, and what the
        scoring calls achieved (1 - cached entries / tokens read, weighted by tokens scored)."""
        achieved = self._ratio_weighted_sum / self._tokens_scored if self._tokens_scored else None
        return {"model_name": self.model.name, "max_length": self.max_length, "chunk": self.chunk,
                "compression": repr(self.compression), "achieved_ratio": achieved}

    # ---- helpers ----

    def _continuation_logprob(self, ids, n_predicted):
        """(sum of log p of the last n_predicted ids given the ids before them, whether each was
        the model's top prediction), all of ids read in one window under the compression."""
        if n_predicted == 0:
            return 0.0, True  # nothing to predict; score() needs at least two tokens
        scored = self.model.score(ids, compression=self.compression, chunk=self.chunk)
        self._ratio_weighted_sum += scored.achieved_ratio * scored.n_scored
        self._tokens_scored += scored.n_scored
        first = len(ids) - 1 - n_predicted  # logprobs[i] is the log-probability of ids[i + 1]
        return float(scored.logprobs[first:].double().sum()), bool(scored.greedy[first:].all())

    def _generation_batches(self, requests):
        """Lists of request indices, up to batch_size each, whose gen_kwargs are the same: one
        generate() call takes one set of options."""
        groups = {}
        for index, request in enumerate(requests):
            groups.setdefault(json.dumps(request.args[1], sort_keys=True, default=str), []).append(index)
        for indices in groups.values():
            for start in range(0, len(indices), self.batch_size):
                yield indices[start:start + self.batch_size]

    def _generate(self, contexts, gen_kwargs):
        options = dict(normalize_gen_kwargs(gen_kwargs, self.max_gen_toks))
        until, max_gen_toks = options.pop("until"), options.pop("max_gen_toks")
        if max_gen_toks >= self.max_length:
            raise ValueError(f"max_gen_toks={max_gen_toks} leaves no room for a prompt in max_length={self.max_length}")
        do_sample = options.pop("do_sample")
        # Sampling with no temperature given samples the model's own distribution, as in the HF model.
        temperature = options.pop("temperature", 1.0)
        sampling = {"temperature": temperature if do_sample else 0.0, "top_p": options.pop("top_p", 1.0),
                    "top_k": options.pop("top_k", 0), "repetition_penalty": options.pop("repetition_penalty", 1.0)}
        if options:
            log.warning("%s ignores these generation options: %s", MODEL_NAME, sorted(options))
        # Prompts left-truncated so that prompt and generation fit max_length, as the HF model does.
        prompts = [self.tok_encode(context)[-(self.max_length - max_gen_toks):] for context in contexts]
        # Each call its own seed, so that repeated sampled requests are not copies of each other.
        seed = self.seed + self._generate_calls
        self._generate_calls += 1
        # The engine stops at the model's end-of-generation tokens by itself (the harness's HF model
        # adds EOS's text to `until` instead), and its text ends before the stop string, as the
        # harness wants it. Empty stop strings, which some tasks list, would stop it at once.
        outputs = self.model.generate(prompts, compression=self.compression, max_tokens=max_gen_toks,
                                      stop=[s for s in until if s], seed=seed, **sampling)
        return [out.text for out in outputs]


def batch_size_from(value):
    """The harness hands batch_size on as given: a number, or `auto`, which only its own HF models size."""
    if str(value).startswith("auto"):
        raise ValueError(f"{MODEL_NAME} takes a number as batch_size (prompts per generate() call), not {value!r}")
    return int(value)


# ---- command line: the harness's own, with our model and tasks as defaults ----

HARNESS_COMMANDS = ("run", "ls", "validate")

USAGE = f"""\
usage: python -m sentinel_kv.harness [lm-eval run options]
       python -m sentinel_kv.harness ls tasks | validate --tasks TASKS

Runs EleutherAI's lm-evaluation-harness: its `lm-eval run` command line, every option of which
works here, with --model {MODEL_NAME} and --include_path (this package's harness_tasks/ folder,
the offline tasks below) added unless given. Dashed spellings like --model-args are accepted for
the harness's --model_args.

--model_args "key=value,...":
  model=PATH           a GGUF file or Hugging Face folder (default: the default model)
  compress=METHOD      none (default), sentinel, h2o, tova, sepllm, streaming, strided, local, scattered; with
                       ratio, span, layout, window, sinks, stride_share, older_rank, compress_seed,
                       adapter as the CLI's --ratio, --span, ... Applied to every request.
  max_length=N         tokens per scored window, and per prompt plus generation (default: the
                       model's trained context)
  chunk=N              tokens per forward pass when scoring (default as `sentinel ppl`: 16 for h2o,
                       tova and heavy sentinel, which evict only between passes, 512 for the others);
                       chunk=1 scores as generation reads
  max_gen_toks=N       default generation length (256); batch_size=N prompts per generate() call;
                       seed=N of sampled generation; dtype, backend, kv_dtype, threads as skv.load()

Offline tasks, on the shared corpora ($SENTINEL_SHARED_DATA, else the checkout's ../shared/data;
--metadata data_dir=PATH overrides both):
  sentinel_wikitext                  word/byte perplexity of WikiText-2 test articles, as the
                                     harness's `wikitext` task (loglikelihood_rolling)
  sentinel_gutenberg_next_sentence   which of 4 sentences follows a passage (multiple choice)
  sentinel_gutenberg_name_recall     generate the name that comes next, seen only earlier in
                                     the passage (generate_until)
  sentinel_local                     all three

Examples:
  python -m sentinel_kv.harness --tasks sentinel_wikitext --limit 5
  python -m sentinel_kv.harness --model_args compress=h2o,ratio=0.5 --tasks sentinel_local --limit 20 \\
      --output_path results/ --log_samples
  python -m sentinel_kv.harness --model_args compress=sentinel,layout=heavy,ratio=0.5 --tasks sentinel_wikitext

The harness's own options follow.
"""


def harness_argv(argv):
    """The harness's argv for ours: `run` unless another of its commands is named first, dashed long
    options in its underscore spelling, and this model and task folder unless given."""
    argv = [underscored(arg) for arg in argv]
    command, options = (argv[0], argv[1:]) if argv and argv[0] in HARNESS_COMMANDS else ("run", argv)
    if command == "run" and not has_option(options, "--model", "-M"):
        options = ["--model", MODEL_NAME, *options]
    if not has_option(options, "--include_path"):
        options = ["--include_path", str(TASK_DIR), *options]
    return [command, *options]


def underscored(arg):
    if not arg.startswith("--"):
        return arg
    name, equals, value = arg.partition("=")
    return name[:2] + name[2:].replace("-", "_") + equals + value


def has_option(options, *names):
    return any(option.split("=", 1)[0] in names for option in options)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        argv = ["run", "--help"]
    sys.argv = ["lm-eval", *harness_argv(argv)]
    cli_evaluate()


if __name__ == "__main__":
    main()
