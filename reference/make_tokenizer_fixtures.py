#!/usr/bin/env python3
"""Writes the tokenizer fixtures under tests/data/tokenizer/ from the reference `tokenizers` library.

Regenerate (about a minute; needs the default model and ../shared/data/wikitext-2-raw):
    python3 reference/make_tokenizer_fixtures.py \
        --gguf ~/.cache/sentinel/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --wikitext ../shared/data/wikitext-2-raw --out tests/data/tokenizer

The reference tokenizer for SmolLM2 is the one reference/make_tokenizer_json.py builds from the GGUF
(not transformers' GGUF loader, which drops SmolLM2's digit split; see that script's header).
Files written (all small; the WikiText corpora are read in place and only hashes are stored):
  hostile_strings.json       hostile inputs -> ids from SmolLM2 and the two tiny tokenizers
  pretokenizer_pieces.json   inputs -> pieces of the gpt2 / smollm / llama3 / qwen2 pre-tokenizers
  utf8_replace.json          byte strings -> Python's bytes.decode('utf-8', errors='replace')
  unicode_classes.json       every code point's \p{L} / \p{N} / \s (the regex engine) and Digits' is_numeric
  chat_templates.json        conversations -> text rendered by transformers' jinja apply_chat_template
  wikitext2_smollm2.json     WikiText-2 test/valid: whole-file and per-line token counts and SHA-256
  tiny-smollm/, tiny-llama3/ tiny trained tokenizer.json + tokenizer_config.json (from_json_file tests)
Not a test: the C++ suites read these files; this script is their only writer.
"""
import argparse
import base64
import hashlib
import json
import os
import random
import struct
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tokenizer_json import LLAMA3_REGEX, QWEN2_REGEX, build_tokenizer_json, read_gguf_tokenizer  # noqa: E402

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")


def hostile_cases():
    """(name, text-or-bytes) pairs. Bytes are invalid UTF-8, given to C++ raw and to Python decoded
    with errors='replace' (the tokenizer's documented behaviour for invalid input)."""
    rng = random.Random(20241128)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüßøñ"
    long_word = "".join(rng.choice(letters) for _ in range(20000))
    return [
        ("empty", ""),
        ("plain", "Hello world! 123"),
        ("emoji_zwj_skin", "👨‍👩‍👧‍👦 family, 👍🏽 thumbs, 🏳️‍🌈 flag, 🇺🇸🇯🇵 flags, ❤️ heart, 🧑🏿‍💻 coder"),
        ("cjk", "你好，世界！这是一个测试。日本語のテキスト、カタカナ ー。한국어 텍스트입니다"),
        ("arabic", "مرحبا بالعالم، هذا اختبار ٣٤٥ والرقم 42."),
        ("devanagari", "नमस्ते दुनिया, क्षत्रिय हिन्दी ॐ १२३"),
        ("thai_hebrew_tamil", "สวัสดีครับ שָׁלוֹם עולם தமிழ் மொழி"),
        ("whitespace_mix", "a  b   c\t\td\n\n\ne\r\nf \r\n g   \n  h\u3000\u3000i\u00a0j\u2003k \u00a0 l\u2028m\u0085n    "),
        ("whitespace_long", " " * 50 + "x" + "\t" * 20 + "y" + "\n" * 10 + " \n" * 5 + "\r\n" * 4 + " " * 7),
        ("digits_long", "1234567890123456789012345678901234567890 3.14159 1,000,000 2024-11-28"),
        ("digits_unicode", "０１２３４５６７８９ １２３ ٣٤٥ ۱۲۳ ½ ¾ Ⅻ ⅷ ²³ ₁₂ 𝟙𝟚𝟛 x²"),
        ("contractions", "it's IT'S don't DON'T we're WE'RE they've I'm you'll he'd 's 't 're 've 'm 'll 'd "
                         "'S 'T 'Re 'VE 'M 'LL 'D 'ſ ''s ' s"),
        ("control_chars", "".join(chr(i) for i in range(0x20)) + "\x7f" + "abc\x00def\x1b[31mred\x1b[0m"),
        ("invalid_utf8", b"abc\xff\xfe def \xc3\x28 \xe2\x82 \xf0\x9f\x98 \xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 end\x80"),
        ("invalid_utf8_tail", b"cut emoji \xf0\x9f\x98"),
        ("special_chat", "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"),
        ("special_adjacent", "<|endoftext|><|endoftext|>text<|im_end|>text<repo_name>x<file_sep> y"),
        ("special_partial", "<|im_start|<|im_end|>> <|im_sta <|IM_START|> < |im_end| >"),
        ("special_begin_of_text", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"),
        ("added_nonspecial", "call <tool> now<tool><tool>"),
        ("trailing_spaces", "trailing spaces   "),
        ("trailing_newline", "trailing newline\n"),
        ("leading_space", " leading"),
        ("only_spaces", "   "),
        ("accents", "Café naïve résumé façade Ångström e\u0301 a\u0308"),
        ("code", "def foo(x):\n    return x ** 2  # comment\n\tif a!=b: print('hi')\n"),
        ("url", "https://example.com/path?q=1&r=2#frag <a href=\"x\">link</a>"),
        ("repeated_punct", "=" * 300 + "!!!???...---"),
        ("mixed_scripts", "Hello,世界!Привет мир¿Qué?Ελληνικά"),
        ("zero_width", "\u200b zero width \u200d joiner \ufeff BOM \u00ad soft"),
        ("symbols", "∑∫√∞ ≠ ≤ ≥ € £ ¥ © ® ™ → ← ↑ ↓ \ufffd"),
        ("math_letters", "𝐀𝐁𝐂 𝔸𝔹ℂ ﬁ ﬂ ǅ"),
        ("private_use", "\ue000\uf8ff\U0010fffd\ufffe\uffff"),
        ("long_word", long_word),
    ]


def crafted_pretokenizer_cases():
    """Short strings aimed at each branch of the regexes (lookahead, optional space, contractions)."""
    return [
        "a  b", "a \n b", "  !x", "\t a", "x\u00a0y", "'s's", "ab'S", "ab's", "123abc", " 123", "a1b2",
        "1234567", "\r\n\r\n  x", " \n\n x", "foo!!!\n\n", "x  \ny", "x\u3000\u3000y", "'ſ", "' s", "''s",
        "hello\r\n", "   ", "\n", "!\r\n\r\n", ". \n", " .\n ", "a\n\n", "\t\tx", " \tx", "  \t x",
        "x \r\n\t y", "!!! x", "don't", "DON'T", "'LL'll", "a'", "é'ś", " 'll", "1'2", "\u0301a",
        "\u0915\u094d\u0937", " \u0301", "?\n", "?\r\n\r\n z", "5 5", "٣٤٥", "١٢٣٤٥٦٧", "\x00 \x01",
        "a\x0bb\x0cc", "\x1c\x1d\x1e\x1f", "tab\t", "x\n ", " \n", "\n ", " ", "",
    ]


def split_pieces(pre_tokenizer, text):
    """Raw pieces (as the original text) of one pre-tokenizer, from the offsets tokenizers reports."""
    return [text[start:end] for _, (start, end) in pre_tokenizer.pre_tokenize_str(text)]


def make_pre_tokenizers():
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return {
        "gpt2": byte_level,
        "smollm": pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]),
        "llama3": pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
        "qwen2": pre_tokenizers.Split(Regex(QWEN2_REGEX), behavior="isolated"),
    }


def case_text(value):
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def case_input(value):
    if isinstance(value, bytes):
        return {"text_base64": base64.b64encode(value).decode("ascii")}
    return {"text": value}


TRAINING_TEXT = """\
Tokenizers turn text into numbers. A byte-level BPE tokenizer starts from the 256 possible bytes and
learns merges: the most frequent adjacent pair becomes a new symbol, again and again, until the
vocabulary is full. Encoding replays those merges in the order they were learned. The pre-tokenizer
first cuts the text into words, numbers, punctuation and runs of whitespace, so that no merge ever
crosses a word boundary. Digits are often split one by one: 2024 becomes 2, 0, 2, 4, and 3.14159 keeps
its dot. Contractions such as don't, it's, we're, they've, I'm, you'll and he'd keep their apostrophe
with the suffix. Special tokens like <|im_start|> and <|im_end|> are matched whole before any of this.
The quick brown fox jumps over the lazy dog; the lazy dog sleeps while the fox runs into the forest.
Café, naïve, résumé and façade carry accents; 日本語 and 中文 and 한국어 are written without spaces;
emoji such as 👍 and 🎉 take four bytes each. Streaming decoders hold back a partial character until
the rest of its bytes arrive, and invalid bytes become the replacement character.
Numbers: one two three four five six seven eight nine ten, first second third, 1st 2nd 3rd 4th.
Models read tokens, predict the next token, and the tokenizer decodes the result back into text.
Whitespace matters: two  spaces, a\ttab, a newline
and a blank line

all produce different tokens. def main(): return 0  # code has indentation too.
"""


def synthetic_corpus():
    """Made-up words from Latin, Cyrillic and kana syllables with Zipf-like counts: enough distinct words
    for a thousand-odd merges, including merges of multi-byte characters."""
    rng = random.Random(11)
    syllables = ["ka", "to", "ri", "zen", "mo", "lu", "pa", "shi", "qua", "dre", "vel", "nox", "ith", "or",
                 "ан", "ко", "ри", "сть", "か", "の", "り", "ト", "ン", "é", "ü", "ß"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(5000)]
    lines = []
    for _ in range(4000):
        picked = [words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1)] for _ in range(12)]
        lines.append(" ".join(picked) + rng.choice([".", ",", "!", "?", ":", ""]))
    return "\n".join(lines)


def train_tiny(pre_tokenizer, special, non_special, n_merges):
    """A small BPE trained on TRAINING_TEXT and made-up words, so that from_json_file can be tested
    without the 2 MB real file."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=256 + len(special) + n_merges, min_frequency=1, show_progress=False,
                                  special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([TRAINING_TEXT] * 3 + [synthetic_corpus()], trainer=trainer)
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=True) for token in non_special])
    return tokenizer


def make_tiny_tokenizers(out_dir, smollm2_template):
    smollm_pre = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tiny_smollm = train_tiny(smollm_pre, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], ["<tool>"], 1500)
    llama3_pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated"),
                                          pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    llama3_special = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                      "<|eot_id|>"]
    tiny_llama3 = train_tiny(llama3_pre, llama3_special, [], 1200)
    tiny_llama3.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
        special_tokens=[("<|begin_of_text|>", tiny_llama3.token_to_id("<|begin_of_text|>"))])
    llama3_json = json.loads(tiny_llama3.to_str())
    llama3_json["model"]["ignore_merges"] = True  # as in Meta's Llama-3 tokenizer.json
    tiny_llama3 = Tokenizer.from_str(json.dumps(llama3_json))

    configs = {
        "tiny-smollm": (tiny_smollm, {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
                                      "add_bos_token": False, "chat_template": smollm2_template}),
        "tiny-llama3": (tiny_llama3, {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>"},
                                      "chat_template": LLAMA3_TEMPLATE}),
    }
    for name, (tokenizer, config) in configs.items():
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        tokenizer.save(os.path.join(out_dir, name, "tokenizer.json"))
        with open(os.path.join(out_dir, name, "tokenizer_config.json"), "w", encoding="utf-8") as out:
            json.dump(config, out, ensure_ascii=False, indent=2)
    return {name: (tokenizer, config) for name, (tokenizer, config) in configs.items()}


LONG_IDS = 2000  # longer id lists are stored as count + SHA-256 to keep the fixture small


def compact_ids(ids):
    if len(ids) <= LONG_IDS:
        return ids
    return {"n_tokens": len(ids), "sha256": ids_sha256(ids)}


def encode_both_ways(tokenizer, text, add_special_tokens):
    """ids with special tokens parsed, and with them split like ordinary text (split_special_tokens)."""
    tokenizer.encode_special_tokens = False
    parsed = tokenizer.encode(text, add_special_tokens=add_special_tokens).ids
    tokenizer.encode_special_tokens = True
    ignored = tokenizer.encode(text, add_special_tokens=add_special_tokens).ids
    tokenizer.encode_special_tokens = False
    return {"parse": compact_ids(parsed), "ignore": compact_ids(ignored)}


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as out:
        json.dump(value, out, ensure_ascii=False, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def ids_sha256(ids):
    return hashlib.sha256(struct.pack(f"<{len(ids)}i", *ids)).hexdigest()


def split_lines(text):
    """Lines with their '\\n' kept (the last one may lack it); only '\\n' separates lines."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def wikitext_fixture(tokenizer, wikitext_dir):
    result = {"line_rule": "split on '\\n' only, each line keeps its '\\n'; the last line may lack it",
              "hash_rule": "sha256 of the ids as little-endian int32; per-line hashes keep 16 hex digits",
              "files": {}}
    for name in ("wiki.test.raw", "wiki.valid.raw"):
        with open(os.path.join(wikitext_dir, name), "rb") as src:
            text = src.read().decode("utf-8")
        whole = tokenizer.encode(text, add_special_tokens=False).ids
        lines = split_lines(text)
        per_line = [tokenizer.encode(line, add_special_tokens=False).ids for line in lines]
        result["files"][name] = {
            "n_tokens": len(whole), "sha256": ids_sha256(whole), "n_lines": len(lines),
            "line_n_tokens": [len(ids) for ids in per_line],
            "line_sha256_16": [ids_sha256(ids)[:16] for ids in per_line],
        }
        print(f"{name}: {len(whole)} tokens whole, {sum(map(len, per_line))} by line, {len(lines)} lines")
    return result


def utf8_fixture():
    rng = random.Random(7)
    cases = [b"", b"\x80", b"\xbf\x80", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xc2\x41", b"\xe0\x80\x80",
             b"\xe0\xa0", b"\xe0\xa0\x80", b"\xed\x9f\xbf", b"\xed\xa0\x80", b"\xef\xbf\xbd", b"\xf0\x8f\xbf\xbf",
             b"\xf0\x90\x80", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
             b"\xfe\xff", b"a\xf0\x9f\x98\x80b", b"\xf0\x9f\x98", b"\xf0\x9f\x98a", b"\xe2\x82\xac\xe2\x82",
             b"\xf8\x88\x80\x80\x80", b"\xc3\xa9\xcc\x81"]
    alphabet = [0x41, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1,
                0xf3, 0xf4, 0xf5, 0xff]
    for _ in range(300):
        cases.append(bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 10))))
    return {"rule": "bytes.decode('utf-8', errors='replace'): each maximal invalid subpart -> U+FFFD",
            "cases": [{"bytes_base64": base64.b64encode(raw).decode("ascii"),
                       "replaced": raw.decode("utf-8", errors="replace")} for raw in cases]}


def code_point_ranges(code_points):
    ranges = []
    for c in sorted(code_points):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def unicode_classes_fixture():
    """The character classes as tokenizers itself sees them, for every code point: its regex engine
    (Oniguruma) for \\p{L}, \\p{N}, \\s, and Rust's char::is_numeric for the Digits pre-tokenizer.
    These follow the Unicode versions compiled into tokenizers, which may be newer than ICU's."""
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    everything = {ord(ch) for ch in text}
    result = {"rule": "inclusive [first, last] ranges of code points in each class (surrogates excluded)"}
    for name, regex in (("letter", r"\p{L}"), ("number", r"\p{N}"), ("whitespace", r"\s")):
        unmatched = set()
        for piece, _ in pre_tokenizers.Split(Regex(regex), behavior="removed").pre_tokenize_str(text):
            unmatched.update(ord(ch) for ch in piece)
        result[name] = code_point_ranges(everything - unmatched)
    # Digits isolates each numeric character; a lone character between two numerics is isolated too,
    # so every singleton is confirmed between two letters.
    digits = pre_tokenizers.Digits(individual_digits=True)
    singletons = [ord(piece) for piece, _ in digits.pre_tokenize_str(text) if len(piece) == 1]
    result["numeric"] = code_point_ranges(
        c for c in singletons if len(digits.pre_tokenize_str("a" + chr(c) + "b")) == 3)
    return result


def chat_fixture(tiny):
    from transformers import PreTrainedTokenizerFast

    conversations = [
        ([{"role": "user", "content": "Hello!"}], True),
        ([{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "What is 2+2?"}], True),
        ([{"role": "user", "content": "  spaced content \n"}, {"role": "assistant", "content": "answer"}], False),
        ([{"role": "assistant", "content": "I start"}], True),
        ([{"role": "user", "content": "日本語\nline2 ✓ <|im_end|> inside"}], False),
        ([{"role": "user", "content": "\u3000 trimmed \u00a0\x1c"}, {"role": "tool", "content": "{\"x\": 1}"}], True),
    ]
    cases = []
    for name, (tokenizer, config) in tiny.items():
        eos = config["eos_token"]
        fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=config["bos_token"],
                                       eos_token=eos["content"] if isinstance(eos, dict) else eos)
        for messages, add_generation_prompt in conversations:
            rendered = fast.apply_chat_template(messages, chat_template=config["chat_template"], tokenize=False,
                                                add_generation_prompt=add_generation_prompt)
            cases.append({"tokenizer": name, "messages": messages, "add_generation_prompt": add_generation_prompt,
                          "rendered": rendered})
    return {"cases": cases}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", required=True)
    parser.add_argument("--wikitext", required=True, help="folder holding wiki.test.raw and wiki.valid.raw")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    gguf = read_gguf_tokenizer(args.gguf)
    smollm2 = Tokenizer.from_str(json.dumps(build_tokenizer_json(gguf)))
    from gguf import GGUFReader
    smollm2_template = GGUFReader(args.gguf).fields["tokenizer.chat_template"].contents()
    tiny = make_tiny_tokenizers(args.out, smollm2_template)

    cases = []
    for name, value in hostile_cases():
        text = case_text(value)
        entry = {"name": name, **case_input(value),
                 "smollm2": encode_both_ways(smollm2, text, add_special_tokens=False)}
        for tiny_name, (tokenizer, _) in tiny.items():
            entry[tiny_name] = encode_both_ways(tokenizer, text, add_special_tokens=True)
        cases.append(entry)
    write_json(os.path.join(args.out, "hostile_strings.json"),
               {"note": "smollm2 ids: add_special_tokens=False; tiny-* ids: add_special_tokens=True "
                        "(tiny-llama3 adds <|begin_of_text|>). parse/ignore: split_special_tokens off/on.",
                "long_ids": f"id lists longer than {LONG_IDS} are stored as n_tokens + sha256 (little-endian int32)",
                "cases": cases})

    pre = make_pre_tokenizers()
    piece_cases = []
    for text in crafted_pretokenizer_cases() + [case_text(v) for n, v in hostile_cases() if n != "long_word"]:
        piece_cases.append({"text": text, **{kind: split_pieces(p, text) for kind, p in pre.items()}})
    write_json(os.path.join(args.out, "pretokenizer_pieces.json"), {"cases": piece_cases})

    write_json(os.path.join(args.out, "utf8_replace.json"), utf8_fixture())
    write_json(os.path.join(args.out, "unicode_classes.json"), unicode_classes_fixture())
    write_json(os.path.join(args.out, "chat_templates.json"), chat_fixture(tiny))
    write_json(os.path.join(args.out, "wikitext2_smollm2.json"), wikitext_fixture(smollm2, args.wikitext))


if __name__ == "__main__":
    main()
