#!/usr/bin/env python3
"""Fixtures for the semantic-similarity metric: all-MiniLM-L6-v2's WordPiece tokenizer against
Hugging Face `tokenizers`, and its sentence embeddings against sentence-transformers.

Regenerate (about a minute; needs scripts/setup.sh's all-MiniLM-L6-v2 and ../shared/data):
    python3 reference/make_minilm_fixtures.py

Writes into tests/data/minilm/ (about 280 KB together):
  bert_unicode.json   BertNormalizer and BertPreTokenizer per code point, each step alone (no model
                      needed): the characters clean_text removes or maps to a space,
                      handle_chinese_chars pads, the pre-tokenizer isolates (punctuation) or splits
                      on; lowercase and strip_accents outputs where they change the character (Hangul
                      syllables left out) and a SHA-256 over every code point's output
  tokens.json         ids of tokenizers.Tokenizer.from_file(tokenizer.json) with truncation and
                      padding off ([CLS] ... [SEP]): hostile strings (and the ids that
                      sentence-transformers' tokenize() gives, truncated to max_seq_length 256);
                      WikiText-2 test line by line (count and SHA-256 prefix of every line, full ids of
                      every 20th line) and as one string
  embeddings.safetensors
                      "embeddings" [n, 384] f32 from SentenceTransformer.encode (mean pooling,
                      normalized) for SENTENCES (kept in the metadata "sentences", as JSON), one longer
                      than 256 tokens; "hidden.<k>" [3, 384] f32, transformers' hidden states 0..6 of
                      the first sentence at its first, middle and last token, for layer-by-layer
                      parity; "hidden_positions" [3] i64
Lines are WikiText's split on '\\n' only, each keeping its '\\n' (as for the SmolLM2 fixtures).
Not a test: tests/unit/base/test_bert_normalizer.cpp, tests/parity/base/test_wordpiece_minilm.cpp
and tests/parity/model/test_minilm_encoder.cpp read these.
"""
import hashlib
import json
import os
import sys

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, normalizers, pre_tokenizers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, SHARED_DATA, minilm_model_path  # noqa: E402
from make_tokenizer_fixtures import (case_input, case_text, code_point_ranges, compact_ids,  # noqa: E402
                                     hostile_cases, ids_sha256, split_lines, write_json)

OUT = REPO / "tests" / "data" / "minilm"
MAX_SEQ_LENGTH = 256
FULL_IDS_EVERY = 20  # WikiText lines whose full ids are stored; the others by count and hash
HANGUL_SYLLABLES = range(0xAC00, 0xD7A4)


def minilm_cases():
    """Hostile strings aimed at BERT's normalizer, pre-tokenizer and WordPiece."""
    return [
        ("special_tokens", "[CLS] hello [MASK] world [SEP][PAD][UNK]x [mask] [ CLS ] [CLS[SEP]]"),
        ("word_100_chars", "a" * 100 + " " + "ab" * 50),
        ("word_101_chars", "a" * 101 + " b " + "é" * 101),
        ("unknown_piece", "hello\u0378world qqqqzzzzxxxx 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"),
        ("punctuation_runs", "...!!!???,,,;;;:::---___((()))[[[]]]{{{}}}\"\"'''``~~~@@@###$$$%%%^^^&&&***+++===|||\\\\<<<>>>///"),
        ("unicode_punctuation", "«guillemets» „quotes“ ‘single’ — dash – ¿que? ¡si! ・ 。、「」『』【】〜 ‐ ‒ ⁂ ※ ‰ § ¶"),
        ("ascii_symbols", "a+b=c $5 50% x^2 a|b a~b `code` <tag> @user #hash a&b a*b"),
        ("accents_combining", "Cafe\u0301 e\u0301\u0302\u0303 A\u030a ǅungla Ⅻ ℌ ﬁ ᾈ ǰ ΐ"),
        ("case_specials", "İstanbul ΣΑΣ ΌΣΟΣ Straße STRASSE ẞ ǅ ǈ ǋ Ⓐ Ω K Å"),
        ("fullwidth", "ＡＢＣ１２３！？　ｈｅｌｌｏ"),
        ("cjk_mixed", "我爱北京天安门abc中文123日本語テキストかなカナ한국어텍스트"),
        ("cjk_extensions", "㐀䶵 𠀀𪛖 𪜀 𫝀 𫠠 豈 丽 \U00031350"),
        ("hangul_jamo", "한국어 \u1100\u1161\u11a8 ㄱㅏ"),
        ("controls_and_formats", "a\x00b\x01c\x7fd\x85e\u200bf\u200cg\u200dh\u2060i\ufeffj\u00adk\ufffdl\U000e0001m"),
        ("whitespace_only", " \t\n\r\u00a0\u3000\u2028\u2029\u1680\u2000\u200a\u202f\u205f"),
        ("newlines", "line one\nline two\r\nline three\n\n\nend"),
        ("numbers", "3.14159 1,000,000 2024-11-28 10:30pm ½ ² ٣٤٥ ١٢٣"),
        ("emoji", "I ❤️ NY 🙂🙃 👨‍👩‍👧 🇫🇷 🥰 ✓ ☃"),
        ("contractions", "don't won't it's y'all rock'n'roll o'clock"),
        ("greek_cyrillic_arabic", "Ελληνικά Русский язык العربية עברית हिन्दी ไทย"),
    ]


def tokenizer_without_limits(path):
    tok = Tokenizer.from_file(str(path))
    tok.no_truncation()
    tok.no_padding()
    return tok


def outputs_sha256(outputs):
    """SHA-256 of every code point's output in code point order, each followed by a 0xFF byte."""
    digest = hashlib.sha256()
    for out in outputs:
        digest.update(out.encode("utf-8") + b"\xff")
    return digest.hexdigest()


def bert_unicode_fixture():
    def step(**enabled):
        options = dict(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=False)
        options.update(enabled)
        return normalizers.BertNormalizer(**options)

    code_points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    clean, chinese = step(clean_text=True), step(handle_chinese_chars=True)
    strip, lower = step(strip_accents=True), step(lowercase=True)
    pre = pre_tokenizers.BertPreTokenizer()
    result = {"rule": "inclusive [first, last] ranges of code points (surrogates excluded); each step of "
                      "BertNormalizer alone on one character; pre-tokenizer on 'a' + c + 'b'",
              "removed": [], "whitespace": [], "chinese": [], "punctuation": [], "split": []}
    lists = {key: [] for key in ("removed", "whitespace", "chinese", "punctuation", "split")}
    lowered, stripped = [], []
    for c in code_points:
        ch = chr(c)
        cleaned = clean.normalize_str(ch)
        if cleaned == "":
            lists["removed"].append(c)
        elif cleaned == " " and c != 0x20:
            lists["whitespace"].append(c)
        if chinese.normalize_str(ch) != ch:
            lists["chinese"].append(c)
        pieces = [piece for piece, _ in pre.pre_tokenize_str("a" + ch + "b")]
        if pieces == ["a", ch, "b"]:
            lists["punctuation"].append(c)
        elif pieces == ["a", "b"]:
            lists["split"].append(c)
        lowered.append(lower.normalize_str(ch))
        stripped.append(strip.normalize_str(ch))
    for key, values in lists.items():
        result[key] = code_point_ranges(values)
    result["lowercase_changed"] = [[c, out] for c, out in zip(code_points, lowered) if out != chr(c)]
    result["lowercase_sha256"] = outputs_sha256(lowered)
    result["strip_accents_changed"] = [[c, out] for c, out in zip(code_points, stripped)
                                       if out != chr(c) and c not in HANGUL_SYLLABLES]
    result["strip_accents_sha256"] = outputs_sha256(stripped)
    result["hash_rule"] = "sha256 over code points in order (surrogates excluded) of utf8(output) + b'\\xff'"
    return result


def tokens_fixture(model_dir, sentence_model):
    tok = tokenizer_without_limits(model_dir / "tokenizer.json")

    def st_ids(text):
        features = sentence_model.tokenize([text])
        mask = features["attention_mask"][0].bool()
        return features["input_ids"][0][mask].tolist()

    cases = []
    for name, value in hostile_cases() + minilm_cases():
        text = case_text(value)
        ids = tok.encode(text).ids
        entry = {"name": name, **case_input(value), "ids": compact_ids(ids)}
        truncated = st_ids(text)
        if truncated != ids:
            entry["ids_max_seq_length"] = compact_ids(truncated)
        cases.append(entry)

    with open(SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw", "rb") as src:
        text = src.read().decode("utf-8")
    lines = split_lines(text)
    per_line = [tok.encode(line).ids for line in lines]
    whole = tok.encode(text).ids
    long_line = max(range(len(lines)), key=lambda i: len(per_line[i]))
    wikitext = {"file": "wikitext-2-raw/wiki.test.raw", "n_lines": len(lines),
                "n_tokens": len(whole), "sha256": ids_sha256(whole),
                "line_n_tokens": [len(ids) for ids in per_line],
                "line_sha256_12": [ids_sha256(ids)[:12] for ids in per_line],
                "full_ids_every": FULL_IDS_EVERY,
                "full_ids": [per_line[i] for i in range(0, len(lines), FULL_IDS_EVERY)],
                "longest_line": long_line,
                "longest_line_ids_max_seq_length": st_ids(lines[long_line])}
    print(f"wiki.test.raw: {len(whole)} tokens whole, {sum(map(len, per_line))} by line, {len(lines)} lines")
    return {"note": "ids with [CLS]/[SEP], truncation and padding off; ids_max_seq_length: "
                    "sentence-transformers' tokenize() (max_seq_length 256), only where it differs",
            "line_rule": "split on '\\n' only, each line keeps its '\\n'; the last line may lack it",
            "hash_rule": "sha256 of the ids as little-endian int32; per-line hashes keep 12 hex digits",
            "cases": cases, "wikitext": wikitext}


def sentences(model_dir):
    """Varied sentences, near and far in meaning, one past max_seq_length (truncated)."""
    with open(SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw", encoding="utf-8") as src:
        lines = src.read().split("\n")
    tok = tokenizer_without_limits(model_dir / "tokenizer.json")
    long_line = next(line.strip() for line in lines if 300 <= len(tok.encode(line).ids) <= 400)
    return [
        "A man is playing a guitar.",
        "Someone is playing an instrument.",
        "The stock market fell sharply on Monday.",
        "Shares dropped steeply at the start of the week.",
        "The cat sat on the mat.",
        "A feline rested on a rug.",
        "Quantum computers use qubits.",
        "I love pizza!",
        "",
        "   ",
        "Café naïve résumé — façade, Ångström.",
        "我爱北京天安门。日本語のテキスト。",
        "Emoji 🙂 and symbols ∑∫√ ≠ €, [MASK] tokens [SEP] inside.",
        "HELLO WORLD hello world Hello World",
        "The tower is 324 metres (1,063 ft) tall, about the same height as an 81-storey building.",
        "don't stop believing; it's y'all's call...",
        "Senjō no Valkyria 3 : Unrecorded Chronicles is a tactical role @-@ playing video game.",
        "word " * 40,
        "supercalifragilisticexpialidocious " + "x" * 120,
        long_line,
    ]


def embeddings_fixture(model_dir, sentence_model):
    from transformers import AutoModel, AutoTokenizer

    texts = sentences(model_dir)
    with torch.no_grad():
        embeddings = sentence_model.encode(texts, batch_size=32, convert_to_tensor=True,
                                           normalize_embeddings=False).float().cpu()
        hf_tok = AutoTokenizer.from_pretrained(str(model_dir))
        hf_model = AutoModel.from_pretrained(str(model_dir)).eval()
        inputs = hf_tok([texts[0]], return_tensors="pt")
        hidden = hf_model(**inputs, output_hidden_states=True).hidden_states
    n_tokens = sentence_model.tokenize(texts)["attention_mask"].sum(1).tolist()
    assert max(n_tokens) == MAX_SEQ_LENGTH, "one sentence must be truncated"
    tensors = {"embeddings": embeddings.contiguous()}
    n = hidden[0].shape[1]
    positions = torch.tensor([0, n // 2, n - 1])
    tensors["hidden_positions"] = positions
    for k, h in enumerate(hidden):
        tensors[f"hidden.{k}"] = h[0, positions].contiguous()
    metadata = {"sentences": json.dumps(texts, ensure_ascii=False), "n_tokens": json.dumps(n_tokens),
                "source": "SentenceTransformer(all-MiniLM-L6-v2).encode, float32, CPU"}
    path = OUT / "embeddings.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    print(f"wrote {path} ({os.path.getsize(path)} bytes); tokens per sentence {n_tokens}")


def main():
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    model_dir = minilm_model_path()
    OUT.mkdir(parents=True, exist_ok=True)
    sentence_model = SentenceTransformer(str(model_dir), device="cpu")
    assert sentence_model.max_seq_length == MAX_SEQ_LENGTH
    write_json(OUT / "bert_unicode.json", bert_unicode_fixture())
    write_json(OUT / "tokens.json", tokens_fixture(model_dir, sentence_model))
    embeddings_fixture(model_dir, sentence_model)


if __name__ == "__main__":
    main()
