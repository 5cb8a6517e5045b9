"""Datasets and scoring for Sentinel's offline lm-evaluation-harness tasks.

The harness loads its datasets from the Hugging Face Hub; these tasks read the shared corpora
instead (WikiText-2 raw and Project Gutenberg books), through the YAML key `custom_dataset`, so
they run with no network. The harness imports this file by path (`!function utils.NAME`), so it
imports nothing from sentinel_kv and needs no built extension.

Where the data is, first found wins: the task metadata `data_dir` (`--metadata data_dir=PATH`, or
`sentinel_kv.harness.task_manager(data_dir=PATH)`), the environment variable
SENTINEL_SHARED_DATA, then `shared/data` in the nearest folder above this file that has one (the
checkout's `../shared/data`, also from the build folder's copy of the package).
"""

import os
import random
import re
from pathlib import Path

import datasets

# The harness's own wikitext detokenizer and word/byte counts, for sentinel_wikitext.yaml's !function
# entries: the same numbers as the harness's `wikitext` task on the same documents.
from lm_eval.tasks.wikitext.preprocess_wikitext import process_results as wikitext_process_results  # noqa: F401
from lm_eval.tasks.wikitext.preprocess_wikitext import wikitext_detokenizer  # noqa: F401

# Books no shipped adapter was trained on (docs/training.md, "Data"), so scores are not inflated.
HELD_OUT_BOOKS = (
    "pg11_alice_in_wonderland.txt",
    "pg35_the_time_machine.txt",
    "pg84_frankenstein.txt",
    "pg1661_adventures_of_sherlock_holmes.txt",
)
ITEMS_PER_BOOK = 25
# Each item's context is whole paragraphs of at least this many words before the item's paragraph:
# a few hundred tokens, long enough for compression at ratio 0.5 to remove part of it.
CONTEXT_WORDS = 250
# Answers and distractors of the next-sentence task are ordinary sentences, not headings or fragments.
SENTENCE_WORDS = (6, 40)
# A name to recall must have left the most recent words: recent context is kept by every method.
RECALL_DISTANCE_WORDS = 60

# A sentence ends at . ! or ? (and any closing quotes), before a capital or an opening quote; not
# after the abbreviations these books use before names.
SENTENCE_END = re.compile(r"(?<!Mr)(?<!Mrs)(?<!Dr)(?<!St)(?<!Mme)[.!?][’”\"')_]*\s+(?=[A-Z‘“\"(_])")
NAME = re.compile(r"\b[A-Z][a-z]{2,}\b")


def shared_data(data_dir=None):
    """The folder of the shared corpora (see the module's docstring for the order of lookup)."""
    if data_dir is None:
        data_dir = os.environ.get("SENTINEL_SHARED_DATA")
    if data_dir is None:
        data_dir = next((folder / "shared" / "data" for folder in Path(__file__).resolve().parents
                         if (folder / "shared" / "data").is_dir()), None)
    if data_dir is None or not Path(data_dir).is_dir():
        raise FileNotFoundError(
            f"the shared corpora folder {data_dir} was not found: set SENTINEL_SHARED_DATA or pass "
            "--metadata data_dir=PATH (the folder with wikitext-2-raw/ and gutenberg/)")
    return Path(data_dir)


# ---- sentinel_wikitext: the harness's wikitext task on the local files ----

def load_wikitext(data_dir=None, **_metadata):
    """WikiText-2 raw test and validation articles, one document per article, as the harness's
    `wikitext` task gets them from EleutherAI/wikitext_document_level (field `page`).

    _metadata: the harness passes every task metadata entry (and, from its CLI, every model arg) to
    a custom_dataset function; only data_dir is ours."""
    folder = shared_data(data_dir) / "wikitext-2-raw"
    return datasets.DatasetDict({
        split: datasets.Dataset.from_dict({"page": wikitext_articles(folder / f"wiki.{name}.raw")})
        for split, name in (("test", "test"), ("validation", "valid"))
    })


def wikitext_articles(path):
    """The documents of a WikiText raw file, split exactly as EleutherAI/wikitext_document_level
    splits them: a new document at each article title (` = Title = `, not ` = = Section = = `),
    text before the first title dropped when blank, and the last document kept as it is."""
    articles, lines = [], []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if is_article_title(line):
            article = "\n".join(lines)
            if article.strip():
                articles.append(article)
            lines = []
        lines.append(line)
    articles.append("\n".join(lines))
    return articles


def is_article_title(line):
    heading = line.replace("= = =", "===").replace("= =", "==").strip()
    return heading.startswith("= ") and heading.endswith(" =")


# ---- Gutenberg passages, shared by the next-sentence and name-recall tasks ----

def book_paragraphs(path):
    """A book's paragraphs (blank-line separated), each unwrapped onto one line."""
    blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
    return [" ".join(block.split()) for block in blocks if block.strip()]


def sentence_spans(paragraph):
    """(start, end) of each sentence of a paragraph, the end before the space that follows it."""
    spans, start = [], 0
    for boundary in SENTENCE_END.finditer(paragraph):
        spans.append((start, boundary.start() + len(boundary.group().rstrip())))
        start = boundary.end()
    spans.append((start, len(paragraph)))
    return spans


def preceding_context(paragraphs, index):
    """Whole paragraphs before paragraph `index`, at least CONTEXT_WORDS words when the book has
    them, joined as the book joins them; None near the start of the book."""
    chosen, words = [], 0
    for paragraph in reversed(paragraphs[:index]):
        chosen.insert(0, paragraph)
        words += len(paragraph.split())
        if words >= CONTEXT_WORDS:
            return "\n\n".join(chosen) + "\n\n"
    return None


def evenly_spaced(candidates, count):
    """`count` of the candidates spread over the whole book (all of them when fewer)."""
    if len(candidates) <= count:
        return candidates
    step = len(candidates) / count
    return [candidates[int(i * step)] for i in range(count)]


def book_items(data_dir, make_items):
    """make_items(book_name, paragraphs) for each held-out book, as one test split."""
    folder = shared_data(data_dir) / "gutenberg"
    rows = [row for book in HELD_OUT_BOOKS for row in make_items(book, book_paragraphs(folder / book))]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})


# ---- sentinel_gutenberg_next_sentence: multiple choice (loglikelihood requests) ----

def load_next_sentence(data_dir=None, **_metadata):
    """Which of four sentences comes next after a passage of a held-out book: the true one, or one
    of three other sentences of the same book (drawn with a fixed seed per item)."""
    return book_items(data_dir, next_sentence_items)


def next_sentence_items(book, paragraphs):
    sentences = [paragraph[start:end] for paragraph in paragraphs for start, end in sentence_spans(paragraph)]
    ordinary = [s for s in sentences if is_ordinary_sentence(s)]
    # Answers never open a paragraph, so every context ends in text and the answer follows it after
    # one space, the harness's target_delimiter.
    boundaries = [(index, start, end)
                  for index, paragraph in enumerate(paragraphs)
                  if preceding_context(paragraphs, index) is not None
                  for start, end in sentence_spans(paragraph)[1:]
                  if is_ordinary_sentence(paragraph[start:end])]
    items = []
    for index, start, end in evenly_spaced(boundaries, ITEMS_PER_BOOK):
        context = preceding_context(paragraphs, index)
        paragraph = paragraphs[index]
        answer = paragraph[start:end]
        rng = random.Random(f"{book}:{index}:{start}")
        distractors = rng.sample([s for s in ordinary if s != answer], 3)
        label = rng.randrange(4)
        choices = distractors[:label] + [answer] + distractors[label:]
        items.append({"book": book, "context": context + paragraph[:start].rstrip(), "choices": choices,
                      "label": label})
    return items


def is_ordinary_sentence(sentence):
    low, high = SENTENCE_WORDS
    return low <= len(sentence.split()) <= high and not sentence.isupper()


# ---- sentinel_gutenberg_name_recall: generate_until ----

def load_name_recall(data_dir=None, **_metadata):
    """Continue a passage of a held-out book where the next word is a name (a capitalised word
    inside a sentence) that the passage used before, but not in its last RECALL_DISTANCE_WORDS
    words: the model has to find it in the older context, which compression thins out."""
    return book_items(data_dir, name_recall_items)


def name_recall_items(book, paragraphs):
    candidates = [(index, match.start(), match.group())
                  for index, paragraph in enumerate(paragraphs)
                  for match in NAME.finditer(paragraph)
                  if not starts_sentence(paragraph, match.start())]
    items = []
    for index, position, name in candidates:
        context = preceding_context(paragraphs, index)
        if context is None:
            continue
        text = context + paragraphs[index][:position].rstrip()
        older, recent = split_recent(text, RECALL_DISTANCE_WORDS)
        if re.search(rf"\b{name}\b", older) and not re.search(rf"\b{name}\b", recent):
            items.append({"book": book, "context": text, "target": name})
    return evenly_spaced(items, ITEMS_PER_BOOK)


def starts_sentence(paragraph, position):
    before = paragraph[:position].rstrip()
    return not before or before[-1] in ".!?:;‘“\"(_—-" or before.endswith(("’", "”"))


def split_recent(text, n_words):
    """text cut before its last n_words words: (older, recent)."""
    words = list(re.finditer(r"\S+", text))
    cut = words[-n_words].start() if len(words) > n_words else 0
    return text[:cut], text[cut:]


def score_name_recall(doc, results):
    """exact_match: the first word generated, without punctuation, is the name."""
    (generation,) = results
    words = generation.split()
    first_word = words[0].strip(".,;:!?’”'\"()_-") if words else ""
    return {"exact_match": float(first_word == doc["target"])}
