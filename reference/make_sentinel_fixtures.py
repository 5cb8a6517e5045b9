"""Writes the sentinel masked-forward fixtures: Hugging Face transformers' LlamaForCausalLM run on a
sequence with <CL>/<CR> spans, its layout built here from docs/method.md sections 2-4 alone (no
Sentinel code), so the C++ masked forward is checked against code we did not write.

    python3 reference/make_sentinel_fixtures.py            # both models
    python3 reference/make_sentinel_fixtures.py tiny       # only tests/data/tiny/sentinel-reference.safetensors
    python3 reference/make_sentinel_fixtures.py smollm2    # only tests/data/model/smollm2-sentinel.safetensors

(with the reference venv: ~/.cache/sentinel/venv/bin/python, after scripts/setup.sh --reference).
Run it again after reference/make_tiny_model.py, which rewrites tests/data/tiny/ from scratch.

For each model, float32 on the CPU, eager attention:
  sentinel_rows   [2, n_embd] f32   the <CL>, <CR> input-embedding rows (seeded normal, std of the
                                    base embedding table); ids n_vocab and n_vocab + 1
  l{i}.ids        [n] i64           the ordinary tokens
  l{i}.spans      [n_spans, 2] i64  [begin, end) ordinary-index ranges compressed by one <CR> each
  l{i}.layout_ids [N] i64           ordinary and sentinel ids in feeding order (section 2)
  l{i}.positions  [N] i64           position ids (section 4)
  l{i}.allow      [N, N] bool       the dense mask of section 3, True = query row may attend to key
  l{i}.ordinary_rows [n] i64        rows of the ordinary tokens in the layout
  l{i}.logits     [n, K] f32        logits at the ordinary rows, for the vocabulary ids `columns`
  l{i}.columns    [K] i64           all n_vocab ids for the tiny model; for SmolLM2 (49,152 ids) a
                                    seeded sample of 1,024 ids plus every row's top 8, to stay small
  l{i}.top        [n] i64           argmax over the whole vocabulary at each ordinary row
The model sees inputs_embeds (base table and sentinel rows concatenated, indexed by layout_ids),
position_ids, and the mask as a [1, 1, N, N] float additive mask (0 / -inf), which transformers
passes untouched to the eager attention (masking_utils: a 4D mask is "already prepared").
"""
import sys

import torch
from safetensors.torch import save_file

from common import REPO, load_hf_model, load_reference_tokenizer

TINY_DIR = REPO / "tests" / "data" / "tiny"
MODEL_DIR = REPO / "tests" / "data" / "model"
SEED = 2310  # arXiv 2310.08152

TINY_TEXT = "The quick brown fox jumps over the lazy dog. Sentinel tokens compress the context: each span is one token."
TINY_TOKENS = 24
TINY_LAYOUTS = [
    [(6, 14)],                    # one span
    [(3, 8), (12, 18)],           # two spans, ordinary tokens between and after
    [(0, 4), (4, 9), (15, 24)],   # a span at the start, adjacent spans, a span closing the sequence
]

SMOLLM2_TEXT = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named "
    "after the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889 as the "
    "centrepiece of the World's Fair."
)
SMOLLM2_TOKENS = 48
SMOLLM2_LAYOUTS = [
    [(10, 30)],
    [(4, 14), (24, 36)],
    [(0, 8), (8, 20), (36, 48)],
]
SMOLLM2_COLUMNS = 1024  # sampled vocabulary ids kept per layout (plus each row's top 8)
SMOLLM2_TOP = 8


def build_layout(ids, spans, cl_id, cr_id):
    """docs/method.md sections 2-4, read literally.

    Section 2: <CL> right before a span's first token, <CR> right after its last.
    Section 4: ordinary token i gets position i; a sentinel takes the position of the element right
    before it (0 at the start).
    Section 3, with l = row of the span's first token and r = row of its <CR>: a query j may attend
    to k <= j when k == j; an ordinary query to any <CR>, to an ordinary token outside every span,
    and, inside span (l, r), to l <= k; a <CR> query to [l-1, r] (its <CL>, the span, itself); a
    <CL> query to itself only.
    """
    starts = {b: s for s, (b, e) in enumerate(spans)}
    ends = {e - 1: s for s, (b, e) in enumerate(spans)}
    span_of = {i: s for s, (b, e) in enumerate(spans) for i in range(b, e)}
    rows = []  # (id, kind, span) per element; kind in "ord", "CL", "CR"
    for i, token in enumerate(ids):
        if i in starts:
            rows.append((cl_id, "CL", starts[i]))
        rows.append((token, "ord", span_of.get(i)))
        if i in ends:
            rows.append((cr_id, "CR", ends[i]))

    positions, next_ordinary = [], 0
    for j, (_, kind, _) in enumerate(rows):
        if kind == "ord":
            positions.append(next_ordinary)
            next_ordinary += 1
        else:
            positions.append(positions[j - 1] if j > 0 else 0)

    first_row = {}  # span -> l
    cr_row = {}     # span -> r
    for j, (_, kind, s) in enumerate(rows):
        if kind == "ord" and s is not None:
            first_row.setdefault(s, j)
        if kind == "CR":
            cr_row[s] = j

    n = len(rows)
    allow = torch.zeros(n, n, dtype=torch.bool)
    for j, (_, q_kind, q_span) in enumerate(rows):
        for k in range(j + 1):
            _, k_kind, k_span = rows[k]
            if k == j:
                ok = True
            elif q_kind == "ord":
                ok = (k_kind == "CR" or (k_kind == "ord" and k_span is None)
                      or (q_span is not None and first_row[q_span] <= k))
            elif q_kind == "CR":
                ok = first_row[q_span] - 1 <= k <= cr_row[q_span]
            else:  # <CL>
                ok = False
            allow[j, k] = ok

    ordinary_rows = [j for j, (_, kind, _) in enumerate(rows) if kind == "ord"]
    return (torch.tensor([r[0] for r in rows], dtype=torch.int64), torch.tensor(positions, dtype=torch.int64),
            allow, torch.tensor(ordinary_rows, dtype=torch.int64))


def sentinel_rows(model):
    table = model.model.embed_tokens.weight.detach().float()
    gen = torch.Generator().manual_seed(SEED)
    return (torch.randn(2, table.shape[1], generator=gen) * table.std()).contiguous()


def masked_logits(model, layout_ids, positions, allow, rows):
    table = torch.cat([model.model.embed_tokens.weight.detach().float(), rows], 0)
    embeds = table[layout_ids][None]  # [1, N, n_embd]
    additive = torch.zeros(allow.shape).masked_fill(~allow, float("-inf"))[None, None]  # [1, 1, N, N]
    with torch.no_grad():
        out = model(inputs_embeds=embeds, position_ids=positions[None], attention_mask=additive, use_cache=False)
    return out.logits[0]  # [N, n_vocab]


def write_fixture(model, ids, layouts, path, columns_kept=None):
    n_vocab = model.config.vocab_size
    rows = sentinel_rows(model)
    tensors = {"sentinel_rows": rows}
    gen = torch.Generator().manual_seed(SEED)
    for i, spans in enumerate(layouts):
        assert all(0 <= b < e <= len(ids) for b, e in spans), spans
        layout_ids, positions, allow, ordinary = build_layout(ids, spans, n_vocab, n_vocab + 1)
        logits = masked_logits(model, layout_ids, positions, allow, rows)[ordinary]  # [n, n_vocab]
        # Cross-check the reference itself: sdpa must agree with eager on the same custom mask.
        model.set_attn_implementation("sdpa")
        sdpa = masked_logits(model, layout_ids, positions, allow, rows)[ordinary]
        model.set_attn_implementation("eager")
        drift = ((sdpa - logits).norm() / logits.norm()).item()
        assert drift < 1e-5, f"layout {i}: sdpa and eager differ by {drift:.2e}"
        if columns_kept is None:
            columns = torch.arange(n_vocab)
        else:
            sample = torch.randperm(n_vocab, generator=gen)[:columns_kept]
            top = logits.topk(SMOLLM2_TOP, dim=-1).indices.flatten()
            columns = torch.unique(torch.cat([sample, top]))  # sorted
        p = f"l{i}."
        tensors[p + "ids"] = torch.tensor(ids, dtype=torch.int64)
        tensors[p + "spans"] = torch.tensor(spans, dtype=torch.int64).reshape(-1, 2)
        tensors[p + "layout_ids"] = layout_ids
        tensors[p + "positions"] = positions
        tensors[p + "allow"] = allow
        tensors[p + "ordinary_rows"] = ordinary
        tensors[p + "columns"] = columns
        tensors[p + "logits"] = logits[:, columns].contiguous()
        tensors[p + "top"] = logits.argmax(-1)
        print(f"{path.name} l{i}: {len(ids)} tokens, spans {spans}, {len(layout_ids)} rows, "
              f"{len(columns)} columns, sdpa/eager {drift:.1e}", file=sys.stderr)
    metadata = {"generator": "reference/make_sentinel_fixtures.py",
                "transformers": __import__("transformers").__version__, "torch": torch.__version__}
    save_file(tensors, str(path), metadata=metadata)
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


def tiny():
    from tokenizers import Tokenizer
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(TINY_DIR / "hf"), dtype=torch.float32,
                                             attn_implementation="eager").eval()
    tok = Tokenizer.from_file(str(TINY_DIR / "hf" / "tokenizer.json"))
    ids = tok.encode(TINY_TEXT).ids[:TINY_TOKENS]
    assert len(ids) == TINY_TOKENS, len(ids)
    write_fixture(model, ids, TINY_LAYOUTS, TINY_DIR / "sentinel-reference.safetensors")


def smollm2():
    model = load_hf_model("float32")
    model.set_attn_implementation("eager")
    ids = load_reference_tokenizer().encode(SMOLLM2_TEXT, add_special_tokens=False).ids[:SMOLLM2_TOKENS]
    assert len(ids) == SMOLLM2_TOKENS, len(ids)
    write_fixture(model, ids, SMOLLM2_LAYOUTS, MODEL_DIR / "smollm2-sentinel.safetensors", SMOLLM2_COLUMNS)


def main():
    torch.manual_seed(0)
    which = sys.argv[1:] or ["tiny", "smollm2"]
    unknown = set(which) - {"tiny", "smollm2"}
    if unknown:
        raise SystemExit(f"unknown model(s) {sorted(unknown)}: use tiny and/or smollm2")
    if "tiny" in which:
        tiny()
    if "smollm2" in which:
        smollm2()


if __name__ == "__main__":
    main()
