#!/usr/bin/env python3
"""Builds the reference Hugging Face tokenizer.json of a byte-level BPE GGUF (SmolLM2 by default).

Regenerate:
    python3 reference/make_tokenizer_json.py \
        ~/.cache/sentinel/models/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/smollm2-tokenizer.json

Why this script exists instead of transformers' GGUF loader: SmolLM2's published tokenizer.json
pre-tokenizes with Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false,
trim_offsets=true, use_regex=true)] (llama.cpp calls this pre-type "smollm": every \\p{N} digit
split off, then the GPT-2 regex). transformers' GGUF loader
(transformers/integrations/gguf/gguf_tokenizer_mapping.py, transformers 5.24) does not know
"smollm" and builds a plain ByteLevel pre-tokenizer, dropping the digit split. Its ids differ
wherever whitespace or numbers meet digits: "a  1" gives [81, 216, 216, 33] instead of the model's
[81, 256, 33], "x\n\n 42" gives [104, 1116, 216, 36, 34] instead of [104, 8866, 36, 34]. Its ids
are therefore NOT a valid reference for this model (docs/tokenizer.md). This script builds
the tokenizer from the GGUF's own vocabulary, merges and control tokens with the model's real
pre-tokenizer, in the same structure as SmolLM2's published tokenizer.json, and checks that the
`tokenizers` library loads it.

Not a general GGUF converter: it knows the pre-types listed in PRE_TOKENIZERS only.
"""
import json
import sys

from gguf import GGUFReader
from tokenizers import Tokenizer

LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")


def byte_level(use_regex):
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": use_regex}


def split_then_byte_level(regex):
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        byte_level(False)]}


# tokenizer.ggml.pre -> the pre_tokenizer of the model's published tokenizer.json.
PRE_TOKENIZERS = {
    "smollm": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, byte_level(True)]},
    "gpt2": byte_level(True),
    "gpt-2": byte_level(True),
    "llama-bpe": split_then_byte_level(LLAMA3_REGEX),
    "llama3": split_then_byte_level(LLAMA3_REGEX),
    "qwen2": split_then_byte_level(QWEN2_REGEX),
}

TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4


def read_gguf_tokenizer(path):
    reader = GGUFReader(path)
    fields = reader.fields

    def scalar(key, default=None):
        field = fields.get(key)
        return default if field is None else field.contents()

    model = scalar("tokenizer.ggml.model")
    if model != "gpt2":
        sys.exit(f"{path}: tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2') is supported")
    return {
        "pre": scalar("tokenizer.ggml.pre", "default"),
        "tokens": fields["tokenizer.ggml.tokens"].contents(),
        "token_type": fields["tokenizer.ggml.token_type"].contents(),
        "merges": fields["tokenizer.ggml.merges"].contents(),
    }


def build_tokenizer_json(gguf):
    pre = gguf["pre"]
    if pre not in PRE_TOKENIZERS:
        sys.exit(f"tokenizer.ggml.pre {pre!r} is not one of {sorted(PRE_TOKENIZERS)}")
    tokens, types = gguf["tokens"], gguf["token_type"]
    added = []
    for token_id, (text, kind) in enumerate(zip(tokens, types)):
        if kind in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED):
            added.append({"id": token_id, "content": text, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": kind == TOKEN_TYPE_USER_DEFINED,
                          "special": kind == TOKEN_TYPE_CONTROL})
    # GGUF merges are "left right" with the split at the first space after the first character
    # (the same rule as llama.cpp); byte-level spellings never contain a real space.
    merges = []
    for merge in gguf["merges"]:
        cut = merge.index(" ", 1)
        merges.append([merge[:cut], merge[cut + 1:]])
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": PRE_TOKENIZERS[pre],
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": pre in ("llama-bpe", "llama3"),
                  "vocab": {text: token_id for token_id, text in enumerate(tokens)},
                  "merges": merges},
    }


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} MODEL.gguf OUT/tokenizer.json")
    tokenizer_json = build_tokenizer_json(read_gguf_tokenizer(sys.argv[1]))
    text = json.dumps(tokenizer_json, ensure_ascii=False, indent=2)
    tokenizer = Tokenizer.from_str(text)  # fails loudly if the structure is not a valid tokenizer
    if tokenizer.get_vocab_size() != len(tokenizer_json["model"]["vocab"]):
        sys.exit("vocabulary has duplicate spellings; the tokenizer would not round-trip")
    with open(sys.argv[2], "w", encoding="utf-8") as out:
        out.write(text)
    print(f"wrote {sys.argv[2]}: {tokenizer.get_vocab_size()} tokens, {len(tokenizer_json['model']['merges'])} merges, "
          f"{len(tokenizer_json['added_tokens'])} added, pre-tokenizer {tokenizer_json['pre_tokenizer']['type']}")


if __name__ == "__main__":
    main()
