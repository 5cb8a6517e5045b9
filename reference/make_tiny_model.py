"""Writes the tiny random-weight Llama used by the fast unit tests, in both formats, and its
expected outputs from Hugging Face transformers.

    python3 reference/make_tiny_model.py

Outputs in tests/data/tiny/:
  hf/              config.json, model.safetensors, tokenizer.json (a Hugging Face model folder)
  tiny.gguf        the same weights (F16 matrices, F32 norms) and tokenizer, as llama.cpp's
                   converter writes them (Q/K rows permuted for ggml's rotary layout)
  expected.safetensors  for each test sequence: ids, per-layer outputs, final norm and logits
                   (float32); the logits of a masked forward with explicit positions and a
                   custom 4D mask; and 24 greedy tokens.
Weights are drawn with a fixed seed and rounded to float16, so the F16 GGUF holds exactly the
weights of the safetensors folder. Untied embeddings, GQA (4 query heads over 2 KV heads).
"""
import json
import shutil

import gguf
import numpy as np
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM

from common import REPO

OUT = REPO / "tests" / "data" / "tiny"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The quick brown fox jumps over the lazy dog. " * 3,
    "Sentinel tokens compress the context: each span is summarised by one token.",
    "Numbers like 1234 and 56, punctuation!? and  spaces\tand\nnewlines.",
    "Attention is all you need; rotary position embeddings rotate queries and keys.",
]
SEQUENCES = [
    "The quick brown fox",
    "<|im_start|>user\nSpans are summarised by one token.<|im_end|>\n<|im_start|>assistant\n",
]


def build_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def build_model(n_vocab):
    config = LlamaConfig(vocab_size=n_vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                         bos_token_id=0, eos_token_id=2)
    torch.manual_seed(1234)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
            p.copy_(p.half().float())  # exactly representable in the F16 GGUF
    return model


def permute_for_ggml(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF rotate_half rows -> ggml pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(model, tok, path):
    cfg = model.config
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("sentinel-tiny-llama")
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    vocab = tok.get_vocab()
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    merges = [" ".join(m) if isinstance(m, (list, tuple)) else m
              for m in json.loads(tok.to_str())["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(vocab["<|endoftext|>"])
    w.add_eos_token_id(vocab["<|im_end|>"])
    w.add_add_bos_token(False)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    per_layer = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
                 "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                 "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for name, p in model.state_dict().items():
        t = p.detach().numpy()
        if name.startswith("model.layers."):
            layer, rest = name[len("model.layers."):].split(".", 1)
            module = rest.rsplit(".", 1)[0]
            if module == "self_attn.q_proj":
                t = permute_for_ggml(t, cfg.num_attention_heads)
            if module == "self_attn.k_proj":
                t = permute_for_ggml(t, cfg.num_key_value_heads)
            gname = f"blk.{layer}.{per_layer[module]}.weight"
        else:
            gname = names[name]
        w.add_tensor(gname, t.astype(np.float32 if t.ndim == 1 else np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def expected_outputs(model, tok):
    out = {}
    for i, text in enumerate(SEQUENCES):
        ids = tok.encode(text).ids
        captured = []
        hooks = [l.register_forward_hook(lambda m, a, o: captured.append(o[0] if isinstance(o, tuple) else o))
                 for l in model.model.layers]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
            final = model.model.norm(captured[-1])[0]
            greedy = model.generate(torch.tensor([ids]), max_new_tokens=24, min_new_tokens=24, do_sample=False,
                                    eos_token_id=None, pad_token_id=0)[0, len(ids):]
        for h in hooks:
            h.remove()
        out[f"s{i}.ids"] = torch.tensor(ids, dtype=torch.int64)
        for layer, h in enumerate(captured):
            out[f"s{i}.layer{layer}"] = h[0].contiguous()
        out[f"s{i}.final_norm"] = final.contiguous()
        out[f"s{i}.logits"] = logits.contiguous()
        out[f"s{i}.greedy"] = greedy.contiguous()

    # A forward with explicit position ids and a dense boolean 4D mask (True = may attend):
    # the layout `a b <CL> c d e <CR> f g` of docs/method.md section 3, using token ids 10..18.
    ids = torch.arange(10, 19)[None]
    positions = torch.tensor([[0, 1, 1, 2, 3, 4, 4, 5, 6]])
    allow = torch.tensor([
        [1, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 1, 0, 0, 0, 0, 0],
        [1, 1, 0, 1, 1, 0, 0, 0, 0],
        [1, 1, 0, 1, 1, 1, 0, 0, 0],
        [0, 0, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 0, 0, 1, 1, 0],
        [1, 1, 0, 0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    additive = torch.zeros(allow.shape).masked_fill(~allow, torch.finfo(torch.float32).min)[None, None]
    with torch.no_grad():
        masked = model(ids, position_ids=positions, attention_mask=additive).logits[0]
    out["masked.ids"] = ids[0]
    out["masked.positions"] = positions[0]
    out["masked.allow"] = allow
    out["masked.logits"] = masked.contiguous()
    return out


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    (OUT / "hf").mkdir(parents=True)
    tok = build_tokenizer()
    model = build_model(tok.get_vocab_size())
    model.save_pretrained(str(OUT / "hf"), safe_serialization=True)
    tok.save(str(OUT / "hf" / "tokenizer.json"))
    (OUT / "hf" / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "add_bos_token": False}, indent=1) + "\n")
    for extra in ("generation_config.json",):
        (OUT / "hf" / extra).unlink(missing_ok=True)
    write_gguf(model, tok, OUT / "tiny.gguf")
    save_file(expected_outputs(model, tok), str(OUT / "expected.safetensors"))
    print("wrote", sorted(p.name for p in OUT.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
