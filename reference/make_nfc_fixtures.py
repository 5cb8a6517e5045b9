#!/usr/bin/env python3
"""Expected ids of NFC-sensitive text under a Qwen tokenizer.json (its normalizer is NFC), for
tests/unit/base/test_tokenizer_nfc.cpp.

    python3 reference/make_nfc_fixtures.py

Reads tests/data/families/qwen2/hf/tokenizer.json (reference/make_family_fixtures.py) and writes
tests/data/tokenizer/nfc_qwen2.json: each text with the ids Hugging Face tokenizers gives it, with
and without special tokens. The texts hold decomposed accents, Hangul jamo, an ohm sign (NFC maps
it to omega), compatibility characters NFC keeps (a ligature, full-width digits) and an added
token between decomposed characters.
"""
import json

from tokenizers import Tokenizer

from common import REPO

TOKENIZER = REPO / "tests" / "data" / "families" / "qwen2" / "hf" / "tokenizer.json"
OUT = REPO / "tests" / "data" / "tokenizer" / "nfc_qwen2.json"
TEXTS = [
    "Cafe\u0301 na\u0131\u0308ve re\u0301sume\u0301",
    "e\u0301\u0301 a\u0300\u0301 o\u0308\u0304",
    "A\u030a and \u00c5 and \u212b",
    "\u2126 is an ohm sign, \u03a9 an omega",
    "\u1112\u1161\u11ab\u1100\u116e\u11a8\u110b\u1165",
    "\ufb01ne \uff11\uff12\uff13 \u00bd",
    "e\u0301<|im_end|>\u0301x",
    "plain ASCII stays as it is",
]


def main():
    tok = Tokenizer.from_file(str(TOKENIZER))
    assert tok.normalizer is not None and type(tok.normalizer).__name__ == "NFC", tok.normalizer
    cases = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in TEXTS]
    OUT.write_text(json.dumps({"tokenizer": str(TOKENIZER.relative_to(REPO)), "cases": cases}, indent=1,
                              ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(REPO)}: {len(cases)} cases")


if __name__ == "__main__":
    main()
