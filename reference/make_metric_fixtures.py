#!/usr/bin/env python3
"""Fixtures for the generation metrics (tests/unit/base/test_metrics_{bleu,rouge}.cpp): BLEU from
sacrebleu, ROUGE-L and the Porter stemmer from rouge-score (which stems with nltk's PorterStemmer).

Writes into tests/data/metrics/ (about 125 KB together):
  pairs.json   the hypothesis/reference pairs the other two files score, by index
  bleu.json    tokenize_13a: strings -> sacrebleu's Tokenizer13a output
               sentence: each pair -> sufficient statistics and, for each of the CONFIGS (smoothing
                         x effective order; only the first for most WikiText pairs), score,
                         precisions and bp from sacrebleu.sentence_bleu
               corpus:   sets of pairs -> the same from sacrebleu.corpus_bleu
  rouge.json   tokens:   strings -> rouge_score.tokenize.tokenize with and without the stemmer
               pairs:    each pair -> rougeL precision, recall, fmeasure, with and without the
                         stemmer (RougeScorer(["rougeL"], use_stemmer).score(reference, hypothesis)),
                         and their means over all pairs (sum(xs) / len(xs))
               stems:    words -> PorterStemmer().stem(word) (rouge-score's stemmer)
               lowercase_to_ascii: every non-ASCII code point whose str.lower() holds [a-z0-9]
The pairs are hostile strings (empty sides, punctuation, unicode, HTML entities, numbers, hyphens,
very short segments) and slices of WikiText-2 test lines (from the shared data folder) against
seeded perturbations of themselves, other lines and their own truncations.

Regenerate: python3 reference/make_metric_fixtures.py   (sacrebleu==2.6.0, rouge-score==0.1.2,
nltk==3.10.4; seeded, so a second run writes the same files)
"""
import json
import random
import re
import sys

import logging

import sacrebleu
from nltk.stem import porter
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
from rouge_score import rouge_scorer, tokenize

from common import REPO, SHARED_DATA

TOKENIZER_13A = Tokenizer13a()
OUT = REPO / "tests" / "data" / "metrics"
WIKITEXT = SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw"

# (smoothing, smooth_value or None, effective_order): the first is sentence_bleu's default, the
# second corpus_bleu's.
CONFIGS = [
    ("exp", None, True),
    ("exp", None, False),
    ("none", None, False),
    ("none", None, True),
    ("floor", None, False),
    ("floor", 0.3, True),
    ("add-k", None, False),
    ("add-k", 2.5, True),
]

# Words with the suffixes every Porter step handles, the NLTK irregular forms and edge cases.
STEM_WORDS = """
caresses ponies ties caress cats flies dies spies lies feed agreed plastered bled motoring sing
conflated troubled sized hopping tanned falling hissing fizzed failing filing happy sky enjoy spy
relational conditional rational valenci hesitanci digitizer conformabli radicalli differentli
vileli analogousli vietnamization predication operator feudalism decisiveness hopefulness
callousness formaliti sensitiviti sensibiliti triplicate formative formalize electriciti
electrical hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible
irritant replacement adjustment dependent adoption homologou communism activate angulariti
homologous effective bowdlerize probate rate cease controll roll generalizations oscillators
happiness nationalities running runs ran studies studying studied business businesses mining
dying lying tying news innings inning outings cannings howe proceed exceed succeed skies
geology theology archaeology philology analogies biologically beautifully fully hopefully
carefulli traditional traditionally emotional sensational sensationalism organizational
realization optimizations computers computing computational argued arguing agreement
agreements measurement measurements cries tries dried tried spied died ied eed ing sses
yyyy yyyyyyyy syzygy toy toys played playing plays boy boys enjoyed enjoying ivy oats trees
trouble troubles private oaten orrery feed feeds bleed bleeding needed succeeding proceeding
hoping hopped filed filled fizzing buzzing missing hissed rolled controlled controlling
wrapping skipping quizzes quizzing axed boxing fixed mixing sawing vowing
""".split()

HOSTILE = [
    ("empty_both", "", ""),
    ("empty_hypothesis", "", "The cat sat on the mat."),
    ("empty_reference", "The cat sat on the mat.", ""),
    ("whitespace_only", " \t\u3000\u00a0 ", "a b"),
    ("identical", "The quick brown fox jumps over the lazy dog.", "The quick brown fox jumps over the lazy dog."),
    ("identical_short", "yes", "yes"),
    ("one_word_match", "cat", "cat dog"),
    ("one_word_miss", "cat", "dog"),
    ("two_words", "the cat", "the dog"),
    ("three_words", "a b c", "a b d"),
    ("three_words_same", "a b c", "a b c"),
    ("no_bigram_match", "b a d c", "a b c d"),
    ("no_trigram_match", "a b x c d", "a b c d"),
    ("longer_hypothesis", "the the the the the the the", "the cat is on the mat"),
    ("punctuation", "Hello, world!!! (really?) [yes] {no} \"quoted\" 'single' a/b c\\d ~ ^ _ ` | @ # $ % * + = < > ; :",
     "Hello world! really? yes, no: \"quoted\" 'single' a / b"),
    ("periods_commas", "Mr. Smith, Jr., arrived at 5 p.m.; e.g., .5 ,7 3.14 1,000,000 2.5. end.",
     "Mr Smith Jr arrived at 5 pm e.g. 0.5 7 3.14 1,000,000 2.5 end"),
    ("dots_and_commas_runs", "a.,b ,.c ... ,,, x..y 1..2 1,,2 .,", "a . , b c ... , x . y"),
    ("numbers_hyphens", "1990-2000 10-year-old state-of-the-art well-known -leading trailing- 3-4 a-1 1-a",
     "1990 - 2000 10 - year - old state-of-the-art well known leading trailing 3 - 4"),
    ("html_entities", "fish &amp; chips &quot;yes&quot; &lt;tag&gt; &amp;lt; &#39;x&#39; &AMP; &nbsp;",
     "fish & chips \"yes\" <tag> &lt; 'x' & nbsp"),
    ("html_entities_nested", "&amp;quot; &amp;amp; &&amp; &quot&quot; &lt;&gt;", "&quot; &amp; && \" <>"),
    ("skipped_and_newlines", "first <skipped> line-\nbroken\nsecond line\n\n", "first line broken second line"),
    ("unicode_accents", "Café naïve — résumé… “quotes” ‘single’ Straße ÉCOLE", "Cafe naive - resume ... \"quotes\" strasse ecole"),
    ("unicode_scripts", "中文 测试。日本語、テスト！ Привет, мир. مرحبا ١٢٣ 😀👍🏽 ½ ²", "中文 测试 Привет мир 😀 123"),
    ("unicode_whitespace", "a\u2003b\u00a0c\u3000d\u2028e\u0085f\u001cg\u200bh", "a b c d e f g h"),
    ("unicode_case", "İstanbul İI KELVIN 5\u212a ǅemal ΣΑΣ Ωmega ﬁne", "istanbul i kelvin 5k dzemal σας omega fine"),
    ("digits_unicode", "٣.٥ ３．５ 3.5 ³.5 x.٣", "3.5 3 . 5"),
    ("trailing_whitespace", "the cat sat   \t\n ", "  the cat sat"),
    ("tabs_and_controls", "a\tb\x0bc\x0cd\re\x1ff", "a b c d e f"),
    ("mixed_case", "The THE the tHe", "the the the the"),
    ("apostrophes", "don't won't it's rock'n'roll o'clock '90s", "do n't wo n't it 's rock n roll"),
    ("stemmer_sentence", "The generalizations of the relational databases were happily running and studied.",
     "A general relation database runs happily; studies generalize."),
    ("stemmer_words", " ".join(STEM_WORDS[:60]), " ".join(reversed(STEM_WORDS[30:100]))),
    ("stemmer_inflections", "The runners were running quickly; relational studies generalized the nationalities.",
     "A runner runs quick and the relations study generalizations of nationality"),
    ("stemmer_only_match", "connections connected connecting connection", "connect connects connective connector"),
    ("long_repeat", " ".join(["to be or not to be"] * 12), " ".join(["to be, or not to be"] * 9)),
]

INFLECTIONS = ["s", "es", "ed", "ing", "ly", "ies", "ness", "ation", "ational", "ful", "ive", "ize", "ment"]

HOSTILE_TOKENIZE_ONLY = [
    "<skipped>", "-\n", "a-\nb", "x\ny", "&", "&amp", "&amp;amp;", "&quot;&quot;", "...", ",,,", "1.", ".1", "1,", ",1",
    "a.b", "1.2.3", "1-2-3", "-1", "1-", "--", "- -", "{[(<>)]}", "a~b", "@user #tag $5 100% a&b c*d e+f",
    "it's", "'quoted'", "\u00a0\u00a0", "\u001c", "é.", ".é", "é,1", "1,é", "\U0001F600.", "x\u0085y",
]


def wikitext_pairs(n_pairs, rng):
    """(name, hypothesis, reference) from WikiText-2 test: body lines cut to 25-60 words, each
    against a perturbation of itself, another line, or its own truncation."""
    lines = [ln.strip() for ln in WIKITEXT.read_text(encoding="utf-8").splitlines()]
    body = [ln for ln in lines if len(ln.split()) >= 30 and not ln.startswith("=")]
    picked = rng.sample(body, 2 * n_pairs)
    vocab = sorted({w for ln in picked for w in ln.split()})
    pairs = []
    for i in range(n_pairs):
        words = picked[i].split()[: rng.randint(25, 60)]
        hyp = " ".join(words)
        kind = i % 4
        if kind == 0:  # word-level noise: drop, substitute, inflect (so stemming matters), swap
            ref_words = []
            for w in words:
                r = rng.random()
                if r < 0.1:
                    continue
                if r < 0.2:
                    w = rng.choice(vocab)
                elif r < 0.4 and w.isalpha() and len(w) > 3:
                    w = re.sub(r"(e|y|s|ed|ing|ly)$", "", w) + rng.choice(INFLECTIONS)
                ref_words.append(w)
            for _ in range(2):
                a, b = rng.randrange(len(ref_words)), rng.randrange(len(ref_words))
                ref_words[a], ref_words[b] = ref_words[b], ref_words[a]
            ref = " ".join(ref_words)
        elif kind == 1:  # another line
            ref = " ".join(picked[n_pairs + i].split()[: rng.randint(20, 60)])
        elif kind == 2:  # truncation (brevity penalty on the other side)
            ref = " ".join(words[: rng.randint(5, len(words) - 1)])
            hyp, ref = ref, hyp
        else:  # detokenized reference: WikiText's " @-@ ", " , " and " . " undone, case changed
            ref = re.sub(r" @(.)@ ", r"\1", hyp).replace(" , ", ", ").replace(" . ", ". ").lower()
        pairs.append((f"wikitext_{i}_{['noise', 'other', 'truncated', 'detok'][kind]}", hyp, ref))
    return pairs


def bleu_result(score):
    return {"score": score.score, "precisions": list(score.precisions), "bp": score.bp}


def bleu_stats(hyp, ref):
    s = sacrebleu.sentence_bleu(hyp, [ref], smooth_method="none")
    return {"sys_len": s.sys_len, "ref_len": s.ref_len, "counts": list(s.counts), "totals": list(s.totals)}


def sentence_entry(index, hyp, ref, configs):
    entry = {"pair": index, **bleu_stats(hyp, ref), "results": []}
    for method, value, effective in configs:
        score = sacrebleu.sentence_bleu(hyp, [ref], smooth_method=method, smooth_value=value,
                                        use_effective_order=effective)
        entry["results"].append(bleu_result(score))
    return entry


def corpus_entry(name, pairs, indices):
    hyps, refs = [pairs[i][1] for i in indices], [pairs[i][2] for i in indices]
    entry = {"name": name, "pairs": list(indices), "results": []}
    for method, value, effective in CONFIGS:
        score = sacrebleu.corpus_bleu(hyps, [refs], smooth_method=method, smooth_value=value,
                                      use_effective_order=effective)
        entry["results"].append({**bleu_result(score), "sys_len": score.sys_len, "ref_len": score.ref_len})
    return entry


def rouge_triple(score):
    return [score.precision, score.recall, score.fmeasure]


def mean(xs):
    return sum(xs) / len(xs)


def main():
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)  # its effective_order advice
    rng = random.Random(20250611)
    wiki = wikitext_pairs(40, rng)
    pairs = HOSTILE + wiki
    hostile = range(len(HOSTILE))
    wikitext = range(len(HOSTILE), len(pairs))
    empty = len(pairs)
    pairs += [("empty_hypothesis_2", "", "d")]
    short = [i for i in hostile if len(pairs[i][1].split()) <= 3]

    bleu = {
        "sacrebleu_version": sacrebleu.__version__,
        "configs": [{"smoothing": m, "smooth_value": v, "effective_order": e} for m, v, e in CONFIGS],
        "tokenize_13a": [{"text": t, "tokens": TOKENIZER_13A(t)}
                         for t in [p[1] for p in HOSTILE] + [p[2] for p in HOSTILE] + HOSTILE_TOKENIZE_ONLY],
        "sentence": [sentence_entry(i, p[1], p[2], CONFIGS if i < len(HOSTILE) + 8 else CONFIGS[:1])
                     for i, p in enumerate(pairs)],
        "corpus": [
            corpus_entry("wikitext", pairs, wikitext),
            corpus_entry("hostile", pairs, hostile),
            corpus_entry("short_segments", pairs, short),
            corpus_entry("one_pair", pairs, [8]),
            corpus_entry("all_empty_hypotheses", pairs, [1, empty]),
            corpus_entry("everything", pairs, range(len(pairs))),
        ],
    }

    scorers = {stem: rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem) for stem in (False, True)}
    stemmer = porter.PorterStemmer()
    rouge_pairs = []
    for index, (name, hyp, ref) in enumerate(pairs):
        entry = {"pair": index}
        for stem in (False, True):
            entry["stemmed" if stem else "plain"] = rouge_triple(scorers[stem].score(ref, hyp)["rougeL"])
        rouge_pairs.append(entry)
    wiki_words = sorted({w for _, h, r in wiki for w in tokenize.tokenize(h + " " + r, None) if len(w) > 3})
    rouge = {
        "rouge_score_version": "0.1.2",
        "tokens": [{"text": t, "plain": tokenize.tokenize(t, None), "stemmed": tokenize.tokenize(t, stemmer)}
                   for t in [p[1] for p in HOSTILE] + [p[2] for p in HOSTILE] + HOSTILE_TOKENIZE_ONLY],
        "pairs": rouge_pairs,
        "mean": {kind: [mean([e[kind][k] for e in rouge_pairs]) for k in range(3)] for kind in ("plain", "stemmed")},
        "stems": {w: stemmer.stem(w) for w in STEM_WORDS + wiki_words},
        "lowercase_to_ascii": [[c, chr(c).lower()] for c in range(0x80, 0x110000)
                               if re.search("[a-z0-9]", chr(c).lower())],
    }

    OUT.mkdir(parents=True, exist_ok=True)
    pair_list = [{"name": n, "hypothesis": h, "reference": r} for n, h, r in pairs]
    for name, data in (("pairs.json", pair_list), ("bleu.json", bleu), ("rouge.json", rouge)):
        path = OUT / name
        path.write_text(json.dumps(data, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n",
                        encoding="utf-8")
        print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
