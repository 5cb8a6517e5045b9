"""Writes the real-model parity fixtures from Hugging Face transformers loading the default GGUF.

    python3 reference/make_model_fixtures.py          # writes tests/data/model/smollm2-*.{safetensors,json}

Outputs (float32 reference, CPU):
  smollm2-forward.safetensors  per prompt: ids, the hidden state entering layer 0 (embeddings),
                               the output of every decoder layer and the final norm at 4 token
                               positions, and the full logits of the last position.
  smollm2-reference.json       64 greedy tokens for two prompts; strided perplexity (ctx 1024,
                               stride 512) of the first 8,192 tokens of WikiText-2 test, with
                               the SHA-256 of those token ids.
The C++ tests (tests/parity/model/) compare against these; regenerate after changing this script.
"""
import hashlib
import json
import math
import sys

import numpy as np
import torch
from safetensors.torch import save_file

from common import REPO, SHARED_DATA, load_hf_model, load_reference_tokenizer

OUT = REPO / "tests" / "data" / "model"
PROMPTS = [
    "The tower is 324 metres tall, about the same height as an 81-storey building.",
    "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n",
    " = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : Unrecorded Chronicles",
]
GREEDY_PROMPTS = [
    "Once upon a time, in a small village by the sea,",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
    "<|im_start|>user\nWrite a short poem about the moon.<|im_end|>\n<|im_start|>assistant\n",
]


def positions_kept(n):
    """Four positions per prompt keep the fixture small: first, second, middle, last."""
    return sorted({0, min(1, n - 1), n // 2, n - 1})


def forward_fixture(model, tok):
    tensors = {}
    for i, text in enumerate(PROMPTS):
        ids = tok.encode(text, add_special_tokens=False).ids
        captured = []
        hooks = [layer.register_forward_hook(lambda m, a, o: captured.append((o[0] if isinstance(o, tuple) else o).detach()))
                 for layer in model.model.layers]
        with torch.no_grad():
            embeds = model.model.embed_tokens(torch.tensor([ids]))
            out = model(torch.tensor([ids]), output_hidden_states=False)
            final = model.model.norm(captured[-1])
        for h in hooks:
            h.remove()
        keep = torch.tensor(positions_kept(len(ids)))
        tensors[f"p{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        tensors[f"p{i}.positions_kept"] = keep
        tensors[f"p{i}.embeddings"] = embeds[0, keep].contiguous()
        for layer, h in enumerate(captured):
            tensors[f"p{i}.layer{layer}"] = h[0, keep].contiguous()
        tensors[f"p{i}.final_norm"] = final[0, keep].contiguous()
        tensors[f"p{i}.logits_last"] = out.logits[0, -1].contiguous()
    return tensors


def greedy_fixture(model, tok):
    runs = []
    for text in GREEDY_PROMPTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        # An explicit all-ones mask: without one, generate() masks every prompt token equal to
        # pad_token_id, and <|im_end|> (id 2) is both the pad and a real token of chat prompts.
        input_ids = torch.tensor([ids])
        with torch.no_grad():
            out = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=64,
                                 min_new_tokens=64, do_sample=False, eos_token_id=None, pad_token_id=2)
        runs.append({"prompt": text, "prompt_ids": ids, "greedy_ids": out[0, len(ids):].tolist()})
    return runs


def strided_ppl(model, ids, ctx, stride):
    """Same windows as sentinel's eval/perplexity: every token after the first scored once."""
    nll, scored, prev_end, begin = 0.0, 0, 0, 0
    while True:
        end = min(begin + ctx, len(ids))
        first = max(prev_end, begin + 1)
        with torch.no_grad():
            logits = model(torch.tensor([ids[begin:end]])).logits[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        targets = torch.tensor(ids[first:end])
        nll -= logp[first - 1 - begin:end - 1 - begin].gather(1, targets[:, None]).sum().item()
        scored += end - first
        prev_end = end
        if end == len(ids):
            break
        begin += stride
    return math.exp(nll / scored), nll, scored


def main():
    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    model = load_hf_model("float32")
    tok = load_reference_tokenizer()
    save_file(forward_fixture(model, tok), str(OUT / "smollm2-forward.safetensors"))

    text = (SHARED_DATA / "wikitext-2-raw" / "wiki.test.raw").read_text(encoding="utf-8")
    ids = tok.encode(text, add_special_tokens=False).ids[:8192]
    ppl, nll, scored = strided_ppl(model, ids, ctx=1024, stride=512)
    reference = {
        "generator": "reference/make_model_fixtures.py",
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
        "greedy": greedy_fixture(model, tok),
        "perplexity": {
            "data": "wikitext-2-raw/wiki.test.raw",
            "max_tokens": 8192,
            "ctx": 1024,
            "stride": 512,
            "tokens": len(ids),
            "ids_sha256": hashlib.sha256(np.asarray(ids, dtype="<i4").tobytes()).hexdigest(),
            "ppl": ppl,
            "nll": nll,
            "scored": scored,
        },
    }
    (OUT / "smollm2-reference.json").write_text(json.dumps(reference, indent=1) + "\n")
    print(f"ppl {ppl:.4f} over {len(ids)} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
