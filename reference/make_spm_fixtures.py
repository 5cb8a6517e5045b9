#!/usr/bin/env python3
"""Writes the SentencePiece tokenizer fixtures under tests/data/tokenizer/ from the two references.

  json   tokenizers 0.23.3 on tokenizer.json files of the shapes transformers writes for Llama 2,
         Mistral/TinyLlama and Gemma (a BPE with byte_fallback): tiny-spm-*/ (a ~1,000-token
         vocabulary trained here, one folder per shape) and spm_json_cases.json (their ids and
         decodes for the hostile strings, random id sequences, and the first 2,000 lines of WikiText-2
         test, whole and line by line).
  gguf   llama.cpp's own tokenizer (libllama of the llama-cpp-python==0.3.36 sdist, through
         reference/llama_cpp_tokenize.cpp) on a SentencePiece GGUF: gguf_spm_<name>.json with ids of
         hostile and random strings (special tokens parsed and not), decodes, and WikiText-2 test
         (first 2,000 lines, and the whole file as one string). With --transformers, also prints how
         often transformers' GGUF tokenizer conversion agrees with llama.cpp on the same inputs.

Regenerate (a minute or two; WikiText-2 is read in place from ../shared/data, never copied):
    python3 reference/make_spm_fixtures.py json --out tests/data/tokenizer
    JOBS=1 bench/peers/build_llama_cpp.sh llama-tokenize     # libllama, once
    python3 reference/make_spm_fixtures.py gguf --name llama-spm \\
        --gguf ~/.cache/sentinel/llama.cpp-vocab/ggml-vocab-llama-spm.gguf --out tests/data/tokenizer
    python3 reference/make_spm_fixtures.py gguf --name phi-3 \\
        --gguf ~/.cache/sentinel/llama.cpp-vocab/ggml-vocab-phi-3.gguf --out tests/data/tokenizer
Any SentencePiece GGUF works the same way (Gemma 3: --name gemma3-270m --gguf .../gemma-3-270m-q4_k_m.gguf);
tests/parity/base/test_spm_gguf_fixtures.cpp checks every gguf_spm_*.json it finds, so write one only
for a GGUF that scripts/setup.sh installs. Not a test: the C++ suites read these files.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, SHARED_DATA, cache_dir  # noqa: E402
from make_tokenizer_fixtures import TRAINING_TEXT, case_text, hostile_cases, ids_sha256, split_lines  # noqa: E402
from make_tokenizer_fixtures import synthetic_corpus  # noqa: E402

SPACE = "\u2581"
N_WIKI_LINES = 2000
SPECIAL = ["<unk>", "<s>", "</s>"]

# The shapes, as transformers writes them (Llama 2 legacy; transformers 5's conversion of a Llama
# GGUF, also Mistral and TinyLlama; Gemma; Metaspace "always" with the Metaspace decoder).
STRIP_DECODER = {"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": SPACE}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
GEMMA_DECODER = {"type": "Sequence", "decoders": STRIP_DECODER["decoders"][:3]}
REPLACE = {"type": "Replace", "pattern": {"String": " "}, "content": SPACE}
PREPEND_REPLACE = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": SPACE}, REPLACE]}


def metaspace(scheme):
    return {"type": "Metaspace", "replacement": SPACE, "prepend_scheme": scheme, "split": False}


def bos_template(bos, bos_id):
    return {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {bos: {"id": bos, "ids": [bos_id], "tokens": [bos]}}}


def train_vocabulary():
    """A small SentencePiece-style BPE (words start with "▁") on TRAINING_TEXT, made-up words and
    WikiText-2 valid, with a limited alphabet so that rarer characters fall back to bytes. Returns
    (tokens in id order: <unk> <s> </s>, <0x00>..<0xFF>, then the learned ones; merges)."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1100, min_frequency=2, show_progress=False, special_tokens=SPECIAL,
                                  limit_alphabet=110)
    with open(SHARED_DATA / "wikitext-2-raw" / "wiki.valid.raw", encoding="utf-8") as src:
        valid = src.read().split("\n")[:3000]
    tokenizer.train_from_iterator([TRAINING_TEXT] * 3 + [synthetic_corpus()] + valid, trainer=trainer)
    model = json.loads(tokenizer.to_str())["model"]
    learned = [t for t, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]) if t not in SPECIAL]
    tokens = SPECIAL + [f"<0x{b:02X}>" for b in range(256)] + learned
    merges = [m if isinstance(m, list) else m.split(" ") for m in model["merges"]]
    return tokens, merges


def tokenizer_json(tokens, merges, normalizer, pre_tokenizer, decoder, post_processor, added, model_options):
    model = {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
             "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
             "vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges}
    model.update(model_options)
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer, "post_processor": post_processor, "decoder": decoder, "model": model}


def added_token(token_id, content, special, normalized):
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": normalized, "special": special}


def variants(tokens, merges):
    """name -> (tokenizer.json, tokenizer_config.json)."""
    n = len(tokens)
    specials = [added_token(i, t, True, False) for i, t in enumerate(SPECIAL)]
    config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True,
              "add_eos_token": False}
    out = {}
    # Llama 2 (legacy): Prepend + Replace, BOS from the post-processor, one normalized added token.
    tool = added_token(n, "<tool>", False, True)
    out["tiny-spm-llama2"] = (tokenizer_json(tokens + ["<tool>"], merges, PREPEND_REPLACE, None, STRIP_DECODER,
                                             bos_template("<s>", 1), specials + [tool], {}), config)
    # transformers 5 from a Llama GGUF / Mistral / TinyLlama: Metaspace "first" and a post-processor that
    # adds nothing (transformers adds BOS itself; without add_bos_token in the config, so do we not).
    plain = {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}],
             "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
             "special_tokens": {}}
    no_bos = {k: v for k, v in config.items() if k != "add_bos_token"}
    out["tiny-spm-metaspace"] = (tokenizer_json(tokens, merges, None, metaspace("first"), STRIP_DECODER, plain,
                                                specials, {}), no_bos)
    # Gemma: Replace only (no prefix), no Strip, turn markers and a non-normalized added "\n\n".
    gemma_extra = ["<start_of_turn>", "<end_of_turn>", "\n\n"]
    gemma_added = specials + [added_token(n, "<start_of_turn>", True, False),
                              added_token(n + 1, "<end_of_turn>", True, False), added_token(n + 2, "\n\n", False, False)]
    out["tiny-spm-gemma"] = (tokenizer_json(tokens + gemma_extra, merges, REPLACE, None, GEMMA_DECODER,
                                            bos_template("<s>", 1), gemma_added, {}),
                             dict(config, eos_token="<end_of_turn>"))
    # Metaspace "always" with the Metaspace decoder (no ByteFallback: <0xXX> decodes as its spelling),
    # no unk fusing, and without the byte tokens of 0xF0..0xFF, so 4-byte characters become <unk>.
    kept = [t for t in tokens if not (t.startswith("<0xF") and len(t) == 6)]
    out["tiny-spm-always"] = (tokenizer_json(kept, merges, None, metaspace("always"), metaspace("always"),
                                             bos_template("<s>", 1), specials, {"fuse_unk": False}), config)
    return out


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(value, out, ensure_ascii=False, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {path} ({path.stat().st_size} bytes)")


def ids_or_hash(ids):
    return ids if len(ids) <= 200 else {"n_tokens": len(ids), "sha256": ids_sha256(ids)}


def text_or_hash(text):
    """Short decodes as text, long ones as {"sha256": hex of the UTF-8}."""
    data = text.encode()
    return text if len(data) <= 120 else {"sha256": hashlib.sha256(data).hexdigest()}


def case_entry(name, value):
    if isinstance(value, bytes):
        return {"name": name, "text_base64": base64.b64encode(value).decode()}
    return {"name": name, "text": value}


def random_cases(count, seed, extra_pieces):
    """Strings glued from pieces of the hostile strings, added tokens and byte/space edge cases."""
    rng = random.Random(seed)
    pieces = [v for _, v in hostile_cases()[:-1]] + extra_pieces
    cases = []
    for i in range(count):
        parts = []
        for _ in range(rng.randint(1, 6)):
            piece = rng.choice(pieces)
            start = rng.randint(0, max(0, len(piece) - 1))
            parts.append(piece[start:start + rng.randint(0, 24)])
        if any(isinstance(p, bytes) for p in parts):
            parts = [p if isinstance(p, bytes) else p.encode() for p in parts]
            cases.append((f"random_{i}", b"".join(parts)))
        else:
            cases.append((f"random_{i}", "".join(parts)))
    return cases


def wikitext_lines():
    with open(SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw", "rb") as src:
        text = src.read().decode("utf-8")
    return text, split_lines(text)[:N_WIKI_LINES]


# ---- json: tokenizers on the tiny tokenizer.json files ----

def make_json(out_dir):
    tokens, merges = train_vocabulary()
    print(f"trained {len(tokens)} tokens, {len(merges)} merges")
    extra = ["<s>", "</s>", "<unk>", "<tool>", " <tool>", "<start_of_turn>", "<end_of_turn>", "\n\n", "  ", " ",
             SPACE, "<0x41>", "\U0001F600", "\u00e9"]
    cases = [(name, value) for name, value in hostile_cases()] + random_cases(300, 7, extra)
    _, lines = wikitext_lines()
    fixture = {"note": "ids with add_special_tokens=True; 'ignore' = encode_special_tokens=True (null: same as "
                       "'parse'); decode/decode_skip of the 'parse' ids (decode_skip null: same as decode; long "
                       "texts as sha256); wikitext: first lines of wiki.test.raw, add_special_tokens=False, "
                       "line_decode_differs: lines whose decode is not the line itself -> sha256 of the decode (16 hex)",
               "cases": [case_entry(name, value) for name, value in cases], "variants": {}}
    rng = random.Random(3)
    for name, (tok_json, config) in variants(tokens, merges).items():
        folder = out_dir / name
        write_json(folder / "tokenizer.json", tok_json)
        write_json(folder / "tokenizer_config.json", config)
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        result = {"parse": [], "ignore": [], "decode": [], "decode_skip": []}
        for _, value in cases:
            text = case_text(value)
            tokenizer.encode_special_tokens = False
            parsed = tokenizer.encode(text, add_special_tokens=True).ids
            tokenizer.encode_special_tokens = True
            ignored = tokenizer.encode(text, add_special_tokens=True).ids
            tokenizer.encode_special_tokens = False
            result["parse"].append(ids_or_hash(parsed))
            result["ignore"].append(None if ignored == parsed else ids_or_hash(ignored))
            decoded = tokenizer.decode(parsed, skip_special_tokens=False)
            decoded_skip = tokenizer.decode(parsed, skip_special_tokens=True)
            result["decode"].append(text_or_hash(decoded))
            result["decode_skip"].append(None if decoded_skip == decoded else text_or_hash(decoded_skip))
        # Random id sequences whose byte tokens always form whole characters (tokenizers' ByteFallback
        # writes one U+FFFD per byte of a broken run, which Sentinel leaves as raw bytes).
        n_vocab = tokenizer.get_vocab_size()
        byte_ids = {tokenizer.token_to_id(f"<0x{b:02X}>"): b for b in range(256)} if name != "tiny-spm-always" else {}
        char_bytes = [c.encode() for c in "é€😀 \n"]
        sequences = []
        for _ in range(120):
            ids = []
            for _ in range(rng.randint(0, 8)):
                if rng.random() < 0.2 and byte_ids:
                    ids += [tokenizer.token_to_id(f"<0x{b:02X}>") for b in rng.choice(char_bytes)]
                else:
                    token_id = rng.randrange(n_vocab)
                    if token_id not in byte_ids:
                        ids.append(token_id)
            sequences.append(ids)
        result["id_sequences"] = [[ids, tokenizer.decode(ids, skip_special_tokens=False),
                                   tokenizer.decode(ids, skip_special_tokens=True)] for ids in sequences]
        per_line = [tokenizer.encode(line, add_special_tokens=False).ids for line in lines]
        joined = "".join(lines)
        whole = tokenizer.encode(joined, add_special_tokens=False).ids
        result["wikitext"] = {
            "n_lines": len(lines), "whole": {"n_tokens": len(whole), "sha256": ids_sha256(whole)},
            "line_n_tokens": [len(ids) for ids in per_line],
            "line_sha256_16": [ids_sha256(ids)[:16] for ids in per_line],
            "line_decode_differs": {str(i): hashlib.sha256(tokenizer.decode(ids).encode()).hexdigest()[:16]
                                    for i, (line, ids) in enumerate(zip(lines, per_line))
                                    if tokenizer.decode(ids) != line}}
        fixture["variants"][name] = result
        print(f"{name}: {sum(map(len, per_line))} tokens in {len(lines)} lines")
    write_json(out_dir / "spm_json_cases.json", fixture)


# ---- gguf: llama.cpp on a SentencePiece GGUF ----

def llama_cpp_tool(work_dir):
    """Compiles reference/llama_cpp_tokenize.cpp against the libllama that bench/peers builds."""
    root = cache_dir() / "peers" / "llama.cpp"
    lib = root / "build" / "bin"
    if not (lib / "libllama.so").exists():
        raise SystemExit(f"{lib}/libllama.so is missing: run JOBS=1 bench/peers/build_llama_cpp.sh llama-tokenize")
    exe = Path(work_dir) / "llama_cpp_tokenize"
    subprocess.run(["g++", "-std=c++17", "-O2", f"-I{root / 'include'}", f"-I{root / 'ggml' / 'include'}",
                    str(REPO / "reference" / "llama_cpp_tokenize.cpp"), f"-L{lib}", "-lllama", "-lggml",
                    "-lggml-base", f"-Wl,-rpath,{lib}", "-o", str(exe)], check=True)
    return exe


def run_tool(exe, mode, gguf, records):
    data = bytearray()
    for record in records:
        if mode == "encode":
            data += struct.pack("<I", len(record)) + record
        else:
            data += struct.pack("<I", len(record)) + struct.pack(f"<{len(record)}i", *record)
    out = subprocess.run([str(exe), mode, str(gguf)], input=bytes(data), capture_output=True, check=True)
    return [json.loads(line) for line in out.stdout.decode().splitlines()]


def as_bytes(value):
    return value if isinstance(value, bytes) else value.encode()


def make_gguf(args):
    gguf = Path(args.gguf).expanduser().resolve()
    with tempfile.TemporaryDirectory() as work:
        exe = llama_cpp_tool(work)
        extra = ["<s>", "</s>", "<unk>", " ", "  ", "\n", "\n\n", "\t\t", SPACE, "<0x0A>", "<start_of_turn>",
                 "<end_of_turn>", "<bos>", "<table>", "<|user|>", "<|end|>\n", "<|assistant|>", b"\xf0\x9f", b"\x80"]
        cases = [(name, value) for name, value in hostile_cases()] + random_cases(250, 11, extra)
        encoded = run_tool(exe, "encode", gguf, [as_bytes(v) for _, v in cases])
        decoded = run_tool(exe, "decode", gguf, [e["special"] for e in encoded])
        text, lines = wikitext_lines()
        line_ids = [e["plain"] for e in run_tool(exe, "encode", gguf, [line.encode() for line in lines])]
        whole = run_tool(exe, "encode", gguf, [text.encode()])[0]["plain"]
        fixture = {
            "note": "llama.cpp (llama-cpp-python==0.3.36 sdist) via reference/llama_cpp_tokenize.cpp. plain: "
                    "add_special=false parse_special=false; special: add_special=true parse_special=true; "
                    "decode/decode_skip: llama_detokenize of the special ids with (remove_special=false, "
                    "unparse_special=true) / (true, false), base64 or sha256 if long (decode_skip null: same)",
            "gguf": os.path.relpath(gguf, cache_dir()) if str(gguf).startswith(str(cache_dir())) else str(gguf),
            "gguf_sha256": hashlib.sha256(gguf.read_bytes()).hexdigest(),
            "cases": [], "wikitext": {
                "n_lines": len(lines), "whole_file": {"n_tokens": len(whole), "sha256": ids_sha256(whole)},
                "line_n_tokens": [len(ids) for ids in line_ids],
                "line_sha256_16": [ids_sha256(ids)[:16] for ids in line_ids]}}
        def bytes_or_hash(data):
            return base64.b64encode(data).decode() if len(data) <= 120 else {"sha256": hashlib.sha256(data).hexdigest()}

        for (name, value), e, d in zip(cases, encoded, decoded):
            entry = case_entry(name, value)
            text, skip = bytes.fromhex(d["text"]), bytes.fromhex(d["skip"])
            entry.update({"plain": ids_or_hash(e["plain"]), "special": ids_or_hash(e["special"]),
                          "decode": bytes_or_hash(text), "decode_skip": None if skip == text else bytes_or_hash(skip)})
            fixture["cases"].append(entry)
        write_json(Path(args.out) / f"gguf_spm_{args.name}.json", fixture)
        if args.transformers:
            compare_transformers(gguf, cases, encoded, lines, line_ids)


def compare_transformers(gguf, cases, encoded, lines, line_ids):
    """How often transformers' GGUF tokenizer conversion gives llama.cpp's ids (a report, not a fixture)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import convert_gguf_tokenizer, get_gguf_tokenizer
    architecture, tokenizer_dict, _ = get_gguf_tokenizer(str(gguf))
    tokenizer, _ = convert_gguf_tokenizer(architecture, tokenizer_dict)
    tokenizer.encode_special_tokens = True
    differ = [(name, value, e["plain"], tokenizer.encode(case_text(value), add_special_tokens=False).ids)
              for (name, value), e in zip(cases, encoded)]
    differ = [d for d in differ if d[2] != d[3]]
    line_differ = [(i, line, want, tokenizer.encode(line, add_special_tokens=False).ids)
                   for i, (line, want) in enumerate(zip(lines, line_ids))]
    line_differ = [d for d in line_differ if d[2] != d[3]]
    print(f"transformers vs llama.cpp: {len(cases) - len(differ)}/{len(cases)} strings agree, "
          f"{len(lines) - len(line_differ)}/{len(lines)} WikiText-2 test lines agree")
    for name, value, want, got in differ[:8] + line_differ[:8]:
        print(f"  {name!r} {case_text(value)[:60]!r}\n    llama.cpp    {want[:16]}\n    transformers {got[:16]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    json_cmd = sub.add_parser("json", help="tiny tokenizer.json files and tokenizers' ids")
    json_cmd.add_argument("--out", default=str(REPO / "tests" / "data" / "tokenizer"))
    gguf_cmd = sub.add_parser("gguf", help="llama.cpp's ids on a SentencePiece GGUF")
    gguf_cmd.add_argument("--gguf", required=True)
    gguf_cmd.add_argument("--name", required=True, help="the fixture is gguf_spm_<name>.json")
    gguf_cmd.add_argument("--out", default=str(REPO / "tests" / "data" / "tokenizer"))
    gguf_cmd.add_argument("--transformers", action="store_true", help="also report transformers' agreement")
    args = parser.parse_args()
    if args.command == "json":
        make_json(Path(args.out))
    else:
        make_gguf(args)


if __name__ == "__main__":
    main()
