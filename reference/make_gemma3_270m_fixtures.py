"""Writes the real-model parity fixtures of Gemma 3 270M from Hugging Face transformers loading the GGUF
that scripts/setup.sh installs ($SENTINEL_HOME/models/gemma-3-270m-q4_k_m.gguf, Q4_K_M, dequantized to
float32 by transformers; float32 CPU forward, eager attention). Not a test: the C++ tests compare against it.

    ~/.cache/sentinel/venv/bin/python reference/make_gemma3_270m_fixtures.py   # a few minutes on 2 cores

Outputs in tests/data/model/:
  gemma3-270m-reference.safetensors  per sequence KEY (plain, chat, wiki):
    KEY.ids                    [T] i64      transformers' ids, with the <bos> (2) it adds
    KEY.top1                   [T] i64      argmax of the logits at each position (its prediction of t+1)
    KEY.top2_margin            [T] f32      top-1 minus top-2 logit there (a near tie may flip elsewhere)
    KEY.logsumexp              [T] f32      log sum exp of the logits over all 262,144 ids at each position
    KEY.next_logprob           [T-1] f32    log-softmax of the actual next token ids[t+1] at position t
    KEY.last8_positions        [8] i64      the last 8 positions, T-8..T-1
    KEY.last8_logits_stride16  [8, 16384] f32  their logits of ids 0, 16, 32, ... (column j is id 16 j)
    KEY.last8_top64_ids        [8, 64] i64  their 64 largest logits' ids, best first
    KEY.last8_top64_logits     [8, 64] f32  and values
  and for plain and chat (greedy continuations: plain argmax, no logits processors, no stop on <eos>,
  each step a full forward of the whole sequence):
    KEY.greedy                 [64] i64
    KEY.greedy_margin          [64] f32     top-1 minus top-2 logit at each greedy step
  gemma3-270m-reference.json  the texts (WikiText-2's only as its SHA-256), ids, greedy ids and their text, the
                              smallest margins, versions, the GGUF's SHA-256, and whether llama.cpp's
                              llama-tokenize gives the same ids.
The logits of the last 8 positions are a column sample, not whole rows: whole rows are 1 MiB each in
float32 (262,144 ids), 24 MiB for the three sequences; the sample (every 16th id, the top 64, and the
log-sum-exp of the full row) checks a row's spread, its head and its total mass in 0.5 MiB per sequence.

The sequences:
  plain  an English paragraph (PLAIN_TEXT), 40 tokens with <bos>.
  chat   "What is the capital of France?" as one user message rendered with Gemma 3's chat template and
         add_generation_prompt=True. The GGUF holds no tokenizer.chat_template (it is the base model,
         google/gemma-3-270m, converted by GGUF-my-repo), so the template is google/gemma-3-*-it's, the one
         reference/make_family_fixtures.py pins by SHA-256. The rendering starts with "<bos>", so it is
         tokenized without adding special tokens (one <bos>).
  wiki   WikiText-2 test (../shared/data/wikitext-2-raw/wiki.test.raw, read in place): its first 5 lines, the
         first 1,745 characters (" \\n = Robert Boulter = \\n \\n Robert Boulter is ... \\n In 2006 , ... \\n"),
         tokenized with <bos> (421 ids), of which the first WIKI_TOKENS = 300 are kept.
All three are shorter than the 512-token sliding window, so the window is not exercised here.
"""
import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata

import torch
import transformers
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPO, SHARED_DATA, cache_dir  # noqa: E402
from make_family_fixtures import GEMMA3_CHAT_TEMPLATE, GEMMA3_CHAT_TEMPLATE_SHA256  # noqa: E402

OUT = REPO / "tests" / "data" / "model"
GGUF_FILE = "gemma-3-270m-q4_k_m.gguf"
GGUF_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"  # scripts/setup.sh pins the same
LLAMA_TOKENIZE = cache_dir() / "peers" / "llama.cpp" / "build" / "bin" / "llama-tokenize"

# Of 14 English paragraphs tried, the one whose 64 greedy steps have the largest smallest top-2 margin (0.107;
# the others' were 0.002 to 0.055). Small margins flip under quantized arithmetic: llama.cpp on the same GGUF
# (Q4_K_M weights, 8-bit activations) leaves this greedy path at step 19 (margin 0.130) and chat's at step 7
# (0.472), so an engine computing on the quantized weights can match only up to its first near tie.
PLAIN_TEXT = ("In 1969, the Apollo 11 mission landed the first humans on the Moon. Neil Armstrong and Buzz Aldrin "
              "spent about two hours walking on the surface, while Michael Collins")
CHAT_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
WIKI_LINES = 5
WIKI_TOKENS = 300
N_LAST = 8
LOGIT_STRIDE = 16
N_TOP = 64
N_GREEDY = 64


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def wiki_text():
    path = SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(lines[:WIKI_LINES])


def sequences(tok):
    """(key, text, add_special_tokens, ids, how the text was made)."""
    chat = tok.apply_chat_template(CHAT_MESSAGES, chat_template=GEMMA3_CHAT_TEMPLATE, add_generation_prompt=True,
                                   tokenize=False)
    wiki = wiki_text()
    plain_ids = tok(PLAIN_TEXT)["input_ids"]
    chat_ids = tok(chat, add_special_tokens=False)["input_ids"]
    wiki_all = tok(wiki)["input_ids"]
    assert plain_ids[0] == tok.bos_token_id and chat_ids[0] == tok.bos_token_id and chat_ids.count(tok.bos_token_id) == 1
    return [
        ("plain", PLAIN_TEXT, True, plain_ids, "PLAIN_TEXT with <bos>"),
        ("chat", chat, False, chat_ids, "Gemma 3's chat template (make_family_fixtures.GEMMA3_CHAT_TEMPLATE) on "
                                        f"{CHAT_MESSAGES}, add_generation_prompt=True; tokenized without adding <bos>"),
        ("wiki", wiki, True, wiki_all[:WIKI_TOKENS],
         f"wikitext-2-raw/wiki.test.raw lines 1-{WIKI_LINES} ({len(wiki)} characters), with <bos>: "
         f"{len(wiki_all)} ids, the first {WIKI_TOKENS} kept"),
    ]


def per_position(logits, ids):
    """logits [T, V] f32 -> the per-position tensors (log-probabilities computed in float64)."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    top2 = logits.topk(2, dim=-1)
    last = torch.arange(len(ids) - N_LAST, len(ids))
    top = logits[last].topk(N_TOP, dim=-1)
    return {
        "top1": top2.indices[:, 0].contiguous(),
        "top2_margin": (top2.values[:, 0] - top2.values[:, 1]).contiguous(),
        "logsumexp": torch.logsumexp(logits.double(), dim=-1).float(),
        "next_logprob": logp[:-1].gather(1, torch.tensor(ids[1:])[:, None])[:, 0].float(),
        "last8_positions": last,
        "last8_logits_stride16": logits[last][:, ::LOGIT_STRIDE].contiguous(),
        "last8_top64_ids": top.indices.contiguous(),
        "last8_top64_logits": top.values.contiguous(),
    }


def greedy(model, ids, n):
    """Plain argmax continuation (full forward each step, no cache, no processors, no stop on <eos>)."""
    seq, margins = list(ids), []
    with torch.no_grad():
        for _ in range(n):
            top2 = model(torch.tensor([seq])).logits[0, -1].topk(2)
            seq.append(int(top2.indices[0]))
            margins.append(float(top2.values[0] - top2.values[1]))
    return torch.tensor(seq[len(ids):], dtype=torch.int64), torch.tensor(margins, dtype=torch.float32)


def llama_cpp_ids(gguf, text, add_bos):
    """llama.cpp's ids (special tokens parsed) from bench/peers' llama-tokenize, or None when it is not built."""
    if not LLAMA_TOKENIZE.exists():
        return None
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write(text)
    try:
        cmd = [str(LLAMA_TOKENIZE), "-m", str(gguf), "-f", f.name, "--ids", "--log-disable"]
        out = subprocess.run(cmd + ([] if add_bos else ["--no-bos"]), capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    gguf = cache_dir() / "models" / GGUF_FILE
    if not gguf.exists():
        raise SystemExit(f"{gguf} is missing: run scripts/setup.sh first")
    if sha256_of(gguf) != GGUF_SHA256:
        raise SystemExit(f"{gguf} does not have SHA-256 {GGUF_SHA256}: run scripts/setup.sh again")
    assert hashlib.sha256(GEMMA3_CHAT_TEMPLATE.encode()).hexdigest() == GEMMA3_CHAT_TEMPLATE_SHA256
    torch.manual_seed(0)
    tok = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                              dtype=torch.float32, attn_implementation="eager").eval()
    tensors, records = {}, []
    for key, text, add_special, ids, source in sequences(tok):
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]  # [T, 262144] f32
        tensors[f"{key}.ids"] = torch.tensor(ids, dtype=torch.int64)
        for name, value in per_position(logits, ids).items():
            tensors[f"{key}.{name}"] = value
        # WikiText-2 stays out of the repository: its record holds the text's SHA-256, not the text.
        record = {"key": key, "source": source, "text": None if key == "wiki" else text,
                  "text_chars": len(text), "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
                  "add_special_tokens": add_special, "n_tokens": len(ids), "ids": ids,
                  "mean_next_logprob": float(tensors[f"{key}.next_logprob"].double().mean())}
        cpp = llama_cpp_ids(gguf, text, add_special)
        if key == "wiki" and cpp is not None:
            full = tok(text)["input_ids"]
            record["llama_cpp_ids_equal"] = cpp == full  # the whole 5 lines, not only the ids kept
        else:
            record["llama_cpp_ids_equal"] = None if cpp is None else cpp == ids
        if cpp is not None and not record["llama_cpp_ids_equal"]:
            record["llama_cpp_ids"] = cpp
        if key != "wiki":
            greedy_ids, margins = greedy(model, ids, N_GREEDY)
            tensors[f"{key}.greedy"], tensors[f"{key}.greedy_margin"] = greedy_ids, margins
            record["greedy_ids"] = greedy_ids.tolist()
            record["greedy_text"] = tok.decode(greedy_ids.tolist())
            record["min_greedy_margin"] = float(margins.min())
            record["min_greedy_margin_step"] = int(margins.argmin())
        records.append(record)
        print(f"{key}: {len(ids)} tokens, mean next-token log-prob {record['mean_next_logprob']:.4f}"
              + (f", min greedy margin {record['min_greedy_margin']:.4f}" if key != "wiki" else "")
              + f", llama.cpp ids equal: {record['llama_cpp_ids_equal']}", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(OUT / "gemma3-270m-reference.safetensors"))
    reference = {
        "generator": "reference/make_gemma3_270m_fixtures.py",
        "model": {"path": f"models/{GGUF_FILE}", "relative_to": "$SENTINEL_HOME", "sha256": GGUF_SHA256,
                  "size": gguf.stat().st_size, "dequantized_by": "transformers (GGUF loader), float32",
                  "attn_implementation": "eager", "config": {
                      k: getattr(model.config, k) for k in ("vocab_size", "hidden_size", "intermediate_size",
                                                            "num_hidden_layers", "num_attention_heads",
                                                            "num_key_value_heads", "head_dim", "sliding_window",
                                                            "layer_types", "rope_parameters", "query_pre_attn_scalar",
                                                            "rms_norm_eps", "final_logit_softcapping",
                                                            "attn_logit_softcapping")}},
        "versions": dict({name: metadata.version(name) for name in ("transformers", "torch", "tokenizers", "gguf",
                                                                     "safetensors", "numpy")},
                         python=platform.python_version()),
        "chat_template_sha256": GEMMA3_CHAT_TEMPLATE_SHA256,
        "llama_tokenize": "bench/peers' llama-tokenize (llama-cpp-python==0.3.36's llama.cpp), special tokens parsed",
        "last8_logits": {"stride": LOGIT_STRIDE, "top": N_TOP,
                         "note": "column j of KEY.last8_logits_stride16 is token id 16 j"},
        "sequences": records,
    }
    (OUT / "gemma3-270m-reference.json").write_text(json.dumps(reference, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
