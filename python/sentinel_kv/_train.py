"""Training from Python: `sentinel train` run in this process, with a progress callback."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

from . import _core

PathLike = Union[str, os.PathLike]


@dataclass
class TrainResult:
    finished: bool           # False: on_step stopped it; the same call with resume=True continues
    adapter: str             # the adapter file written (the weights so far when stopped)
    log: str                 # the JSON-lines log, one line per update
    checkpoint: str          # what resume=True continues from
    updates: list[dict]      # every update's log line seen by this call


def _cli_arguments(options: dict[str, Any]) -> list[str]:
    """Keywords as `sentinel train` options: lora_rank=8 -> --lora-rank=8; True -> a flag; False/None -> left out.
    One word per option and value, so a misspelt option is refused by its name."""
    args: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, (list, tuple)):
            args += [f"{flag}={item}" for item in value]
        else:
            args.append(f"{flag}={value}")
    return args


def train(data: Union[PathLike, Sequence[PathLike]], out: PathLike, *,
          on_step: Optional[Callable[[dict], Optional[bool]]] = None, progress: bool = True,
          **options: Any) -> TrainResult:
    """Fine-tunes a model for compressed inference, exactly as ``sentinel train DATA --out OUT ...``.

    Every option of `sentinel train --help` is a keyword, dashes as underscores (``model=``,
    ``method="sentinel"``, ``layout="heavy"``, ``steps=200``, ``lora_rank=8``, ``resume=True``,
    ``peft_dir=...``); the same checks refuse the same values with the same messages (as
    SentinelError). ``on_step(update)`` receives each update's log line (step, steps, loss, lr,
    tokens_per_s, ...) and may return False to stop: the result then says ``finished=False``.
    Ctrl-C, or an exception raised in ``on_step``, stops the run too and is then raised. A stopped
    run has written its checkpoint and the adapter so far; call again with ``resume=True``.
    """
    files = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    args = [os.fspath(f) for f in files] + ["--out", os.fspath(out)] + _cli_arguments(options)
    updates: list[dict] = []
    bar = _progress_bar() if progress else None

    def step(update: dict) -> bool:
        updates.append(update)
        if bar is not None:
            bar.total = update["steps"]
            bar.update(update["step"] - bar.n)
            bar.set_postfix(loss=f"{update['loss']:.4f}", tok_s=f"{update['tokens_per_s']:.0f}")
        return on_step is None or on_step(update) is not False

    try:
        code = _core.train(args, step)
    finally:
        if bar is not None:
            bar.close()
    out = os.fspath(out)
    log = options.get("log") or out + ".log.jsonl"
    return TrainResult(finished=code == 0, adapter=out, log=os.fspath(log), checkpoint=out + ".checkpoint",
                       updates=updates)


def export_peft(adapter: PathLike, directory: PathLike, base_model_name_or_path: Optional[str] = None,
                lora_dropout: float = 0.0) -> str:
    """Writes an adapter as a folder Hugging Face peft loads as it is (``sentinel export``):
    ``PeftModel.from_pretrained(hf_model, directory)``. Returns the line the CLI prints."""
    return _core.export_peft(os.fspath(adapter), os.fspath(directory), base_model_name_or_path or "", lora_dropout)


def _progress_bar():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(unit="update", desc="train")
