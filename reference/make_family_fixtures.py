"""Writes the tiny random-weight fixtures of the model families llama3, qwen2, qwen3 and gemma3: a
Hugging Face folder per family, its GGUFs as llama.cpp's own converter and llama-quantize write them,
and the expected outputs from Hugging Face transformers.

    python3 reference/make_family_fixtures.py [--family NAME ...]

(--family regenerates only those families and keeps the others' files and manifest entries as they are.)

Outputs in tests/data/families/<family>/ (family = llama3, qwen2, qwen3, gemma3):
  hf/                   config.json, tokenizer.json, tokenizer_config.json (gemma3 also the sentencepiece
                        tokenizer.model), and for llama3 only model.safetensors (float16; the others' are
                        converted, then removed)
  model.f16.gguf        convert_hf_to_gguf.py --outtype f16 from llama-cpp-python==0.3.36's llama.cpp
  model.q4_k_m.gguf     llama-quantize of model.f16.gguf; llama3 also has q5_k_m and the
                        --pure files q5_0, q5_1
  expected.safetensors  per test sequence: ids, embeddings, each layer's output, final norm, logits
                        [T, n_vocab] and 16 greedy tokens with their top-2 margins (float32 CPU);
                        llama3 also the logits without its RoPE scaling, gemma3 (seq2) the logits
                        without its sliding window
  expected.json         the test texts and the chat template rendered for two conversations
and tests/data/families/manifest.json (ggml type of every tensor, size and SHA-256 of every file)
and README.md (the same, as tables).
Not a test: the C++ tests compare against these files. Weights are drawn with a fixed seed per family
and rounded to float16, so the F16 GGUF holds exactly the weights of the safetensors folder.
llama.cpp comes from bench/peers/build_llama_cpp.sh (PyPI sdist, SHA-256 pinned), never from pip.
"""
import argparse
import contextlib
import copy
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import processors, trainers
from transformers import (AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig, GemmaTokenizer,
                          LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM)

from common import REPO

OUT = REPO / "tests" / "data" / "families"
BUILD_SCRIPT = REPO / "bench" / "peers" / "build_llama_cpp.sh"
N_VOCAB = 512
N_GREEDY = 16

# The pre-tokenizer regexes exactly as in the tokenizer.json of Meta-Llama-3 and of Qwen2/2.5/3
# (llama.cpp src/llama-vocab.cpp quotes both as "original regex from tokenizer.json"). They differ
# only in digits: Llama 3 groups up to three (\p{N}{1,3}), Qwen one at a time (\p{N}).
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eom_id|>", "<|eot_id|>", "<|python_tag|>"]
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass
class Family:
    """What differs between the families, stated once."""
    name: str
    model_class: type
    config_class: type
    config: dict               # family-specific config fields; they override the shared sizes of build_model
    regex: str | None          # the Split regex of the byte-level pre-tokenizer (None: sentencepiece)
    nfc: bool                  # Qwen's tokenizer.json normalizes to NFC; Llama 3's has no normalizer
    specials: list             # special (control) tokens, after the trained vocab as in the real models
    tokenizer_config: dict     # the real tokenizer_config.json fields (chat_template added from template_file)
    template_file: str | None  # in llama.cpp models/templates/, copied there from the real tokenizer_config.json
    gguf_pre: str | None       # llama.cpp's name for the BPE pre-tokenizer (None: the converter's sentencepiece path)
    seed: int
    added: list = field(default_factory=list)  # added tokens that are not special (Qwen3's <think> tags)
    quants: list = field(default_factory=lambda: [("q4_k_m", "Q4_K_M", False)])  # (file tag, type, --pure)
    # Whether hf/model.safetensors stays in the repository. One family's is enough to test loading
    # Hugging Face folders; the others' F16 GGUFs hold the same weights bit for bit (checked below),
    # and their config.json and tokenizer files stay for the config and tokenizer tests.
    keep_hf_weights: bool = False
    # The chat template text where llama.cpp's models/templates/ has none for the family.
    chat_template: str | None = None
    # Gemma's RMSNorm scales by (1 + w): the HF weights hold w (drawn around 0) and the converter writes
    # 1 + w into the GGUF. 0 for Llama-style norms (x * w, w drawn around 1).
    norm_offset: float = 0.0
    # HF module -> GGUF tensor name where the family differs from the Llama names of HF_TO_GGUF.
    gguf_names: dict = field(default_factory=dict)
    # Write layer_types into the GGUF as <arch>.attention.sliding_window_pattern (see declared_layer_types).
    declare_layer_types: bool = False
    # Weight draws where the family differs from build_model's: parameter-name suffix -> (mean, std) of the
    # normal draw; the first matching suffix wins.
    init: dict = field(default_factory=dict)


QWEN_TOKENIZER_CONFIG = {"add_prefix_space": False, "bos_token": None, "clean_up_tokenization_spaces": False,
                         "eos_token": "<|im_end|>", "errors": "replace", "model_max_length": 131072,
                         "pad_token": "<|endoftext|>", "split_special_tokens": False,
                         "tokenizer_class": "Qwen2Tokenizer", "unk_token": None}
# Gemma 3: a sentencepiece BPE model (tokenizer.model) with byte fallback, no normalization, no dummy prefix and
# digits split one by one, as google/gemma-3-*'s; its special pieces at the real ids (<pad> 0, <eos> 1, <bos> 2,
# <unk> 3, <mask> 4; <start_of_turn>/<end_of_turn> are 105/106 in the real vocab, 5/6 here), then the 256 byte
# pieces, then the trained pieces.
GEMMA3_SPM_OPTIONS = dict(model_type="bpe", vocab_size=N_VOCAB, byte_fallback=True, split_digits=True,
                          allow_whitespace_only_pieces=True, normalization_rule_name="identity", add_dummy_prefix=False,
                          remove_extra_whitespaces=False, character_coverage=1.0, pad_id=0, eos_id=1, bos_id=2,
                          unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
                          user_defined_symbols=["<mask>", "<start_of_turn>", "<end_of_turn>"], num_threads=1,
                          shuffle_input_sentence=False, max_sentence_length=100000, minloglevel=2)
GEMMA3_TURN_TOKENS = ["<start_of_turn>", "<end_of_turn>"]  # special in the real tokenizer.json, as transformers'
                                                          # GemmaConverter marks them
# The chat_template of google/gemma-3-*-it's tokenizer_config.json (llama.cpp's models/templates/ has Gemma 2's
# and Gemma 4's only). Its string literals hold real newlines, as the JSON "\n" escapes decode to.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n")
GEMMA3_CHAT_TEMPLATE_SHA256 = "7de1c58e208eda46e9c7f86397df37ec49883aeece39fb961e0a6b24088dd3c4"
# The real tokenizer_config.json's fields (without the image tokens of the multimodal processor).
GEMMA3_TOKENIZER_CONFIG = {
    "add_bos_token": True, "add_eos_token": False,
    "added_tokens_decoder": {str(i): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                      "single_word": False, "special": special}
                             for i, (t, special) in enumerate([("<pad>", True), ("<eos>", True), ("<bos>", True),
                                                               ("<unk>", True), ("<mask>", True),
                                                               ("<start_of_turn>", True), ("<end_of_turn>", True)])},
    "bos_token": "<bos>", "clean_up_tokenization_spaces": False, "eos_token": "<eos>", "pad_token": "<pad>",
    "sp_model_kwargs": {}, "spaces_between_special_tokens": False, "tokenizer_class": "GemmaTokenizer",
    "unk_token": "<unk>", "use_default_system_prompt": False}

FAMILIES = [
    Family(name="llama3", model_class=LlamaForCausalLM, config_class=LlamaConfig,
           config=dict(rms_norm_eps=1e-5, tie_word_embeddings=False,
                       # Llama 3.1's scaling over a 32-token original context, so that it matters at short positions
                       rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                        "original_max_position_embeddings": 32}),
           regex=LLAMA3_REGEX, nfc=False, specials=LLAMA3_SPECIALS,
           tokenizer_config={"bos_token": "<|begin_of_text|>", "clean_up_tokenization_spaces": False,
                             "eos_token": "<|eot_id|>", "model_input_names": ["input_ids", "attention_mask"],
                             "model_max_length": 131072, "tokenizer_class": "PreTrainedTokenizerFast"},
           template_file="meta-llama-Llama-3.1-8B-Instruct.jinja", gguf_pre="llama-bpe", seed=3001,
           # Q4_K_M holds Q6_K matrices too; Q8_0 is covered by the default model's tests.
           quants=[("q4_k_m", "Q4_K_M", False), ("q5_k_m", "Q5_K_M", False), ("q5_0", "Q5_0", True),
                   ("q5_1", "Q5_1", True)], keep_hf_weights=True),
    Family(name="qwen2", model_class=Qwen2ForCausalLM, config_class=Qwen2Config,
           config=dict(rms_norm_eps=1e-6, tie_word_embeddings=True, use_sliding_window=False,
                       rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
           regex=QWEN2_REGEX, nfc=True, specials=QWEN_SPECIALS, tokenizer_config=QWEN_TOKENIZER_CONFIG,
           template_file="Qwen-Qwen2.5-7B-Instruct.jinja", gguf_pre="qwen2", seed=3002),
    Family(name="qwen3", model_class=Qwen3ForCausalLM, config_class=Qwen3Config,
           config=dict(rms_norm_eps=1e-6, tie_word_embeddings=False, use_sliding_window=False, head_dim=128,
                       attention_bias=False, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
           regex=QWEN2_REGEX, nfc=True, specials=QWEN_SPECIALS, tokenizer_config=QWEN_TOKENIZER_CONFIG,
           template_file="Qwen-Qwen3-0.6B.jinja", gguf_pre="qwen2", seed=3003, added=["<think>", "</think>"]),
    # Gemma 3 text (the 270M/1B shape: 4 query heads, 1 KV head, head_dim 256 != hidden/n_head, query_pre_attn_scalar
    # = head_dim, no RoPE scaling, tied embeddings, no softcapping), scaled down. head_dim 128 != hidden/n_head 64,
    # so an attention scale taken from hidden/n_head instead of head_dim shows. query_pre_attn_scalar stays
    # head_dim: the GGUF has no key for it and llama.cpp computes 1/sqrt(head_dim) (1/sqrt(hidden/n_head) for the
    # 62-layer 27B only). The mixed layer types and an 8-token window make the window cut in within every
    # sequence; the global (full) layer has RoPE theta 1e6, the local (sliding) ones 1e4, as the real models.
    Family(name="gemma3", model_class=Gemma3ForCausalLM, config_class=Gemma3TextConfig,
           config=dict(num_hidden_layers=3, num_key_value_heads=1, head_dim=128, query_pre_attn_scalar=128,
                       layer_types=["sliding_attention", "full_attention", "sliding_attention"], sliding_window=8,
                       rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
                       rms_norm_eps=1e-6, tie_word_embeddings=True, hidden_activation="gelu_pytorch_tanh",
                       final_logit_softcapping=None, attn_logit_softcapping=None, attention_bias=False,
                       pad_token_id=0, attn_implementation="eager"),
           regex=None, nfc=False, specials=[], tokenizer_config=GEMMA3_TOKENIZER_CONFIG, template_file=None,
           chat_template=GEMMA3_CHAT_TEMPLATE, gguf_pre=None, norm_offset=1.0,
           seed=3005,  # of seeds 3004..3011, the one with the largest smallest greedy margin (0.025)
           gguf_names={"post_attention_layernorm": "post_attention_norm", "pre_feedforward_layernorm": "ffn_norm",
                       "post_feedforward_layernorm": "post_ffw_norm"},
           declare_layer_types=True,
           # Norm weights w around 0 (scale 1 + w around 1), except the Q/K norms and the final norm, around 2
           # (scale about 3): sharper attention (with w near 0 the random model is nearly a fixed token -> token
           # map and greedy decoding falls into a 2-token loop) and a logit spread that keeps greedy margins
           # well above float16 noise. Embeddings at Gemma's initializer_range 0.02: the input is scaled by
           # sqrt(256) = 16 and the output head is tied, so with 0.08 every position would predict its own token.
           init={"q_norm.weight": (2.0, 0.2), "k_norm.weight": (2.0, 0.2), "model.norm.weight": (2.0, 0.1),
                 "norm.weight": (0.0, 0.1), "embed_tokens.weight": (0.0, 0.02)}),
]

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps while the fox runs into the forest.",
    "Sentinel tokens compress the context: each span is summarised by one token, and the model attends "
    "to the summaries instead of the evicted keys and values.",
    "Attention is all you need; rotary position embeddings rotate queries and keys by an angle that "
    "grows with the position, so the dot product depends on the distance between tokens.",
    "Numbers like 1234, 56, 7, 890 and 2024 appear in dates, prices ($19.99), versions (3.1.2) and "
    "phone numbers (555-0123). Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 100, 1000, 65536.",
    "I've been told he's there. You're sure? We'll see. She'd like tea; they'd rather not. It's fine, "
    "isn't it? I'm here, you'll find me, we've met. DON'T SHOUT! I'LL listen.",
    "You are a helpful assistant. Answer the question briefly and truthfully. The user asks about "
    "the weather, the news, cooking recipes, history, science and programming.",
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nEnvironment: ipython\nTools: "
    "brave_search, wolfram_alpha",
    "system\nuser\nassistant\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    "def forward(self, x):\n    return self.norm(x + self.attention(x))\n\nfor i in range(10):\n"
    "    print(i * i)  # squares\n",
    "Paris is the capital of France. Berlin is the capital of Germany. Rome is the capital of Italy. "
    "Madrid, Lisbon, Vienna, Prague, Warsaw and Athens are capitals too.",
    "Spaces  and   tabs\tand\nnewlines\n\nmatter to the pre-tokenizer: \"quotes\", 'single quotes', "
    "(brackets), [lists], {braces}, <tags>, a+b=c, 50% off, #hashtag, @mention, e-mail@example.com.",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who told stories "
    "about the stars, the moon, the wind and the waves to anyone who would listen.",
    "Large language models predict the next token. Greedy decoding picks the most likely token at each "
    "step; sampling draws from the distribution with a temperature.",
    "Café, naïve, résumé, Straße, Zürich, São Paulo, 東京, Москва, 😀 emojis and accents test bytes.",
]

# seq0: a plain sentence; seq1: a conversation through the chat template; seq2: a text with
# digits, contractions, spaces, a tab and a newline (~80 tokens: past the 32-token original context).
PLAIN_TEXT = "The quick brown fox jumps over the lazy dog."
CHAT_MESSAGES = [{"role": "system", "content": "You are a helpful assistant."},
                 {"role": "user", "content": "What is the capital of France?"}]
LONG_TEXT = ("In 2024, a model read 1234 tokens and said: \"I've been told it's 56% faster!\"\n"
             "Then  it counted 7, 89 and 65536 keys;\tYou're sure? DON'T stop.")
SEQUENCE_KEYS = ("seq0", "seq1", "seq2")
TWO_MESSAGES = CHAT_MESSAGES
THREE_MESSAGES = [{"role": "user", "content": "Name a capital city."},
                  {"role": "assistant", "content": "Paris is the capital of France."},
                  {"role": "user", "content": "And of Germany?"}]


def build_tokenizer(family):
    tok = Tokenizer(models.BPE())
    if family.nfc:
        tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(family.regex), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    n_trained = N_VOCAB - len(family.specials) - len(family.added)
    trainer = trainers.BpeTrainer(vocab_size=n_trained, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    if tok.get_vocab_size() != n_trained:
        raise SystemExit(f"{family.name}: the corpus gave {tok.get_vocab_size()} tokens, want {n_trained}")
    # Special tokens after the trained vocab, as in the real models (Llama 3 from 128000, Qwen from 151643).
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in family.specials])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in family.added])
    bos = family.tokenizer_config.get("bos_token")
    if bos:  # Llama 3 adds <|begin_of_text|> in its post-processor (Qwen adds no BOS)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                          special_tokens=[(bos, tok.token_to_id(bos))])])
    else:
        tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    assert tok.get_vocab_size() == N_VOCAB
    return tok


def write_sentencepiece_tokenizer(family, hf_dir):
    """Gemma's tokenizer files: tokenizer.model, a sentencepiece BPE trained on CORPUS, and the tokenizer.json
    transformers' GemmaTokenizer converts it to (with the turn tokens special, as in the real tokenizer.json).
    Returns the sentencepiece processor, the reference the transformers tokenizer is checked against."""
    import sentencepiece
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=model, **GEMMA3_SPM_OPTIONS)
    (hf_dir / "tokenizer.model").write_bytes(model.getvalue())
    spm = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    assert spm.get_piece_size() == N_VOCAB
    for token_id, token in family.tokenizer_config["added_tokens_decoder"].items():
        assert spm.piece_to_id(token["content"]) == int(token_id), f"{token['content']} is not id {token_id}"
    # converts tokenizer.model (no tokenizer.json yet); its post-processor adds <bos> as the real tokenizer.json's
    converted = GemmaTokenizer.from_pretrained(str(hf_dir), add_bos_token=family.tokenizer_config["add_bos_token"],
                                               add_eos_token=family.tokenizer_config["add_eos_token"])
    tok = Tokenizer.from_str(converted.backend_tokenizer.to_str())
    assert tok.encode("a").ids[0] == spm.bos_id() and tok.encode("a").ids[-1] != spm.eos_id()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in GEMMA3_TURN_TOKENS])
    assert all(t.special for t in tok.get_added_tokens_decoder().values() if t.content in GEMMA3_TURN_TOKENS)
    assert tok.get_vocab_size() == N_VOCAB
    tok.save(str(hf_dir / "tokenizer.json"))
    return spm


def build_model(family, vocab):
    bos = vocab[family.tokenizer_config.get("bos_token") or family.specials[0]]  # Qwen's config: <|endoftext|>
    eos = vocab[family.tokenizer_config["eos_token"]]
    shared = dict(vocab_size=N_VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                  bos_token_id=bos, eos_token_id=eos)
    config = family.config_class(**dict(shared, **family.config))
    torch.manual_seed(family.seed)
    model = family.model_class(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            special = next((draw for suffix, draw in family.init.items() if name.endswith(suffix)), None)
            if special:
                mean, std = special
                p.copy_(mean + std * torch.randn_like(p))
            elif name.endswith(("q_norm.weight", "k_norm.weight")):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith(".bias"):  # Qwen2's Q/K/V biases: clearly non-zero
                p.copy_(0.3 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
            if family.norm_offset and name.endswith("norm.weight"):
                # w on a 2^-8 grid, so that both w and the converter's 1 + w (added in float16) are exact float16
                # values (for |1 + w| < 8): the GGUF then holds exactly the 1 + w transformers computes in float32.
                p.copy_(torch.round(p * 256) / 256)
                assert torch.equal(p.half().float(), p) and torch.equal((p + family.norm_offset).half().float(),
                                                                          p + family.norm_offset)
            else:
                p.copy_(p.half().float())  # exactly representable in the F16 GGUF
    return model


def with_config(model, change):
    """The same weights under a changed copy of the config."""
    config = model.config.__class__.from_dict(model.config.to_dict())
    change(config)
    config._attn_implementation = model.config._attn_implementation
    variant = model.__class__(config).eval()
    variant.load_state_dict(model.state_dict())
    return variant


def without_rope_scaling(model):
    """The same weights with Llama 3's RoPE scaling removed (the plain theta-500000 rotation)."""
    theta = model.config.rope_parameters["rope_theta"]
    return with_config(model, lambda c: setattr(c, "rope_parameters", {"rope_type": "default", "rope_theta": theta}))


def without_sliding_window(model):
    """The same weights with every layer seeing the whole sequence (layer types and their RoPE thetas kept)."""
    return with_config(model, lambda c: setattr(c, "sliding_window", c.max_position_embeddings))


def greedy(model, ids, n):
    """Plain argmax continuation with no logits processors and no stop on EOS; also the gap between
    the best and second-best logit at each step, so a test can tell a near-tie flip from a bug."""
    seq, margins = list(ids), []
    with torch.no_grad():
        for _ in range(n):
            top2 = model(torch.tensor([seq])).logits[0, -1].topk(2)
            seq.append(int(top2.indices[0]))
            margins.append(float(top2.values[0] - top2.values[1]))
    return torch.tensor(seq[len(ids):], dtype=torch.int64), torch.tensor(margins, dtype=torch.float32)


def fixture_sequences(hf_tok):
    chat = hf_tok.apply_chat_template(CHAT_MESSAGES, add_generation_prompt=True, tokenize=False)
    # The rendered template already holds any BOS, so it is encoded without adding special tokens.
    return list(zip(SEQUENCE_KEYS, [PLAIN_TEXT, chat, LONG_TEXT], [True, False, True]))


# Same weights, one feature removed: (expected key suffix, variant builder, sequences). A C++ test can show the
# feature matters by computing the variant too.
VARIANTS = {"llama3": ("logits_no_rope_scaling", without_rope_scaling, SEQUENCE_KEYS),
            "gemma3": ("logits_no_sliding_window", without_sliding_window, ("seq2",))}


def expected_outputs(family, model, hf_tok):
    out, texts = {}, []
    suffix, make_variant, variant_keys = VARIANTS.get(family.name, (None, None, ()))
    plain = make_variant(model) if make_variant else None
    for key, text, add_special in fixture_sequences(hf_tok):
        ids = hf_tok(text, add_special_tokens=add_special)["input_ids"]
        captured = []
        hooks = [l.register_forward_hook(lambda m, a, o: captured.append(o[0] if isinstance(o, tuple) else o))
                 for l in model.model.layers]
        with torch.no_grad():
            result = model(torch.tensor([ids]), output_hidden_states=True)
            final = model.model.norm(captured[-1])
        for h in hooks:
            h.remove()
        # transformers' hidden_states: [embeddings, layer 0, ..., layer n-2, final norm of layer n-1]
        hidden = result.hidden_states
        assert len(hidden) == len(captured) + 1 and torch.equal(hidden[-1], final)
        assert all(torch.equal(hidden[l + 1], captured[l]) for l in range(len(captured) - 1))
        out[f"{key}.ids"] = torch.tensor(ids, dtype=torch.int64)
        out[f"{key}.embeddings"] = hidden[0][0].contiguous()
        for layer, h in enumerate(captured):
            out[f"{key}.layer{layer}"] = h[0].contiguous()
        out[f"{key}.final_norm"] = final[0].contiguous()
        out[f"{key}.logits"] = result.logits[0].contiguous()
        out[f"{key}.greedy"], out[f"{key}.greedy_margin"] = greedy(model, ids, N_GREEDY)
        if key in variant_keys:
            with torch.no_grad():
                out[f"{key}.{suffix}"] = plain(torch.tensor([ids])).logits[0].contiguous()
        texts.append({"key": key, "text": text, "add_special_tokens": add_special, "n_tokens": len(ids)})
    return out, texts


def chat_renderings(family, hf_tok):
    cases = [("two_messages", TWO_MESSAGES, {}), ("three_messages", THREE_MESSAGES, {})]
    if family.name == "qwen3":
        cases.append(("two_messages_no_thinking", TWO_MESSAGES, {"enable_thinking": False}))
    return [{"name": name, "messages": messages, "add_generation_prompt": True, "template_kwargs": kwargs,
             "rendered": hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kwargs)}
            for name, messages, kwargs in cases]


# --- llama.cpp: the converter, llama-quantize and gguf-py of the pinned sdist ---

def llama_cpp_tree():
    """Builds llama-quantize (one compile job unless JOBS is set) and puts gguf-py first on sys.path."""
    env = dict(os.environ, JOBS=os.environ.get("JOBS", "1"))
    bin_dir = subprocess.run(["bash", str(BUILD_SCRIPT), "llama-quantize"], env=env, check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
    tree = os.path.dirname(os.path.dirname(bin_dir))
    sys.path[:0] = [tree, os.path.join(tree, "gguf-py")]
    import gguf
    if not gguf.__file__.startswith(tree):  # a pip gguf imported earlier would shadow the sdist's
        raise SystemExit(f"gguf was imported from {gguf.__file__}, not from {tree}/gguf-py")
    return tree, os.path.join(bin_dir, "llama-quantize")


@contextlib.contextmanager
def declared_pre_tokenizer(name):
    """convert_hf_to_gguf.py names a BPE pre-tokenizer by the SHA-256 of how the tokenizer encodes a
    fixed text, and knows only the hashes of published vocabularies; a freshly trained 512-token vocab
    hashes to something unknown and the converter stops ("BPE pre-tokenizer was not recognized"). The
    regex is the family's real one, so we declare llama.cpp's name for it (what the hash would give for
    the real Llama 3 / Qwen2 vocab) instead of the hash lookup. Nothing else in the conversion changes.
    None: the family's sentencepiece vocab needs no pre-tokenizer name (the converter writes "default")."""
    if name is None:
        yield
        return
    from conversion.base import TextModel
    original = TextModel.get_vocab_base_pre
    TextModel.get_vocab_base_pre = lambda self, tokenizer: name
    try:
        yield
    finally:
        TextModel.get_vocab_base_pre = original


@contextlib.contextmanager
def declared_layer_types(family):
    """convert_hf_to_gguf.py's Gemma 3 path writes the window size but not which layers are sliding: llama.cpp
    then assumes Gemma 3's published pattern (every sixth layer global), under which all the layers of a model
    this small would be sliding. Its Gemma 3n and Gemma 4 paths write config.json's layer_types as
    <arch>.attention.sliding_window_pattern (one bool per layer, true = sliding), which llama.cpp's Gemma 3
    loader reads as well (load_swa_pattern); we add that one key, as those paths write it."""
    if not family.declare_layer_types:
        yield
        return
    from conversion.gemma import Gemma3Model
    original = Gemma3Model.set_gguf_parameters

    def set_gguf_parameters(self):
        original(self)
        self.gguf_writer.add_sliding_window_pattern([t == "sliding_attention" for t in self.hparams["layer_types"]])
    Gemma3Model.set_gguf_parameters = set_gguf_parameters
    try:
        yield
    finally:
        Gemma3Model.set_gguf_parameters = original


def convert_to_gguf(tree, family, hf_dir, path):
    spec = importlib.util.spec_from_file_location("convert_hf_to_gguf", os.path.join(tree, "convert_hf_to_gguf.py"))
    convert = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(convert)
    argv = sys.argv
    sys.argv = ["convert_hf_to_gguf.py", str(hf_dir), "--outfile", str(path), "--outtype", "f16",
                "--model-name", f"sentinel-tiny-{family.name}"]
    try:
        with declared_pre_tokenizer(family.gguf_pre), declared_layer_types(family):
            convert.main()
    finally:
        sys.argv = argv


def quantize(quantize_bin, src, dst, qtype, pure):
    cmd = [quantize_bin] + (["--pure"] if pure else []) + [str(src), str(dst), qtype, "2"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def field_value(f):
    """A printable value of one GGUF metadata field (long arrays shortened)."""
    import gguf
    if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
        n = len(f.data)
        head = [f.contents(i) for i in range(min(n, 4))] if n else []
        return {"array_len": n, "first": head}
    return f.contents()


def describe_gguf(path):
    import gguf
    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: {"type": t.tensor_type.name, "shape": [int(x) for x in t.shape]} for t in reader.tensors}
    metadata = {name: field_value(f) for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    return reader, tensors, metadata


def permute_for_ggml(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute: HF rotate_half rows -> ggml pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


HF_TO_GGUF = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
              "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
              "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
              "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def check_f16_gguf(family, model, reader):
    """Every HF tensor is in the F16 GGUF bit for bit (Q/K rows permuted where the converter does it; Gemma's
    norm weights as 1 + w), and the llama3 rope_freqs turn theta's frequencies into transformers' scaled ones."""
    cfg = model.config
    gguf_data = {t.name: np.array(t.data) for t in reader.tensors}
    q_rows = set()
    for name, p in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            assert "output.weight" not in gguf_data
            continue
        if name.startswith("model.layers."):
            layer, rest = name[len("model.layers."):].split(".", 1)
            module, kind = rest.rsplit(".", 1)
            gname = f"blk.{layer}.{family.gguf_names.get(module) or HF_TO_GGUF[module]}.{kind}"
        else:
            gname = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
                     "lm_head.weight": "output.weight"}[name]
        want = p.detach().numpy()
        if family.norm_offset and name.endswith("norm.weight"):
            want = want + np.float32(family.norm_offset)  # exact: build_model drew w so that 1 + w is float16
        got = gguf_data.pop(gname).astype(np.float32).reshape(want.shape)
        if np.array_equal(got, want):
            continue
        n_head = cfg.num_attention_heads if "q_proj" in name else cfg.num_key_value_heads
        if np.array_equal(got, permute_for_ggml(want, n_head)):
            q_rows.add(name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1])
            continue
        raise SystemExit(f"{family.name}: {gname} in model.f16.gguf differs from {name}")
    if family.name == "llama3":
        factors = gguf_data.pop("rope_freqs.weight").astype(np.float64)
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        theta = cfg.rope_parameters["rope_theta"]
        base = 1.0 / theta ** (np.arange(0, head_dim, 2) / head_dim)
        hf = model.model.rotary_emb.inv_freq.double().numpy()
        assert np.allclose(base / factors, hf, rtol=1e-5), "rope_freqs do not give transformers' llama3 inv_freq"
    if gguf_data:
        raise SystemExit(f"{family.name}: unexpected tensors in model.f16.gguf: {sorted(gguf_data)}")
    return sorted(q_rows)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_hf_folder(family, tree, hf_dir):
    """The transformers model (float16 on disk) and tokenizer; returns the float32 model in memory."""
    hf_dir.mkdir(parents=True)
    if family.template_file:
        chat_template = open(os.path.join(tree, "models", "templates", family.template_file), encoding="utf-8").read()
    else:
        chat_template = family.chat_template
        assert hashlib.sha256(chat_template.encode()).hexdigest() == GEMMA3_CHAT_TEMPLATE_SHA256
    texts = [PLAIN_TEXT, LONG_TEXT, chat_template]
    if family.regex is None:
        spm = write_sentencepiece_tokenizer(family, hf_dir)
        reference_ids = spm.encode
        texts += CORPUS
    else:
        tok = build_tokenizer(family)
        tok.save(str(hf_dir / "tokenizer.json"))
        reference_ids = lambda text: tok.encode(text, add_special_tokens=False).ids  # noqa: E731
    (hf_dir / "tokenizer_config.json").write_text(json.dumps(
        dict(family.tokenizer_config, chat_template=chat_template), indent=1) + "\n")
    hf_tok = AutoTokenizer.from_pretrained(str(hf_dir))
    for text in texts:  # transformers' tokenizer is the one we trained
        assert hf_tok(text, add_special_tokens=False)["input_ids"] == reference_ids(text), f"{family.name}: {text!r}"
    if family.regex is None:
        # sentencepiece matches its user-defined pieces (<start_of_turn>) in text but not its control pieces
        # (<bos>); transformers matches both: the rendered chat is <bos> followed by sentencepiece's ids.
        bos = family.tokenizer_config["bos_token"]
        for messages in (TWO_MESSAGES, THREE_MESSAGES):
            chat = hf_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            assert chat.startswith(bos) and bos not in chat[len(bos):]
            assert (hf_tok(chat, add_special_tokens=False)["input_ids"]
                    == [hf_tok.convert_tokens_to_ids(bos)] + reference_ids(chat[len(bos):]))
    model = build_model(family, hf_tok.get_vocab())
    # A float16 copy is saved: model.half() itself would also round the RoPE inv_freq buffers.
    copy.deepcopy(model).half().save_pretrained(str(hf_dir), safe_serialization=True)
    (hf_dir / "generation_config.json").unlink(missing_ok=True)
    return model, hf_tok


def write_expected(family, model, hf_tok, out):
    expected, texts = expected_outputs(family, model, hf_tok)
    save_file(expected, str(out / "expected.safetensors"))
    (out / "expected.json").write_text(json.dumps(
        {"sequences": texts, "chat_template_renderings": chat_renderings(family, hf_tok)}, indent=1,
        ensure_ascii=False) + "\n")
    reloaded = AutoModelForCausalLM.from_pretrained(str(out / "hf"), dtype=torch.float32,
                                                    attn_implementation=model.config._attn_implementation).eval()
    for key in SEQUENCE_KEYS:  # the saved folder is the model the expectations came from
        with torch.no_grad():
            logits = reloaded(expected[f"{key}.ids"][None]).logits[0]
        assert torch.equal(logits, expected[f"{key}.logits"]), f"{family.name}: hf/ does not reproduce {key}"
    return expected


def write_ggufs(family, tree, quantize_bin, model, out):
    f16 = out / "model.f16.gguf"
    convert_to_gguf(tree, family, out / "hf", f16)
    reader, _, metadata = describe_gguf(f16)
    permuted = check_f16_gguf(family, model, reader)
    for tag, qtype, pure in family.quants:
        quantize(quantize_bin, f16, out / f"model.{tag}.gguf", qtype, pure)
    return permuted, metadata


def rope_scaling_effect(expected):
    effect = {}
    for key in SEQUENCE_KEYS:
        scaled, plain = expected[f"{key}.logits"], expected[f"{key}.logits_no_rope_scaling"]
        effect[key] = {"max_abs_logit_diff": float((scaled - plain).abs().max()),
                       "argmax_changed_positions": int((scaled.argmax(-1) != plain.argmax(-1)).sum()),
                       "n_tokens": int(scaled.shape[0])}
    if not all(e["max_abs_logit_diff"] > 1.0 for e in effect.values() if e["n_tokens"] > 32):
        raise SystemExit(f"llama3: the RoPE scaling barely changes the logits: {effect}")
    return effect


def sliding_window_effect(model, expected):
    """What the window does to seq2: without it (same weights) the outputs agree bit for bit before position
    `sliding_window` and differ from there on, from the first sliding layer's output on."""
    window = model.config.sliding_window
    ids = expected["seq2.ids"][None]
    with torch.no_grad():
        windowed = model(ids, output_hidden_states=True).hidden_states
        plain = without_sliding_window(model)(ids, output_hidden_states=True)
    logits, no_window = expected["seq2.logits"], expected["seq2.logits_no_sliding_window"]
    assert torch.equal(plain.logits[0], no_window)
    per_position = (logits - no_window).abs().amax(-1)  # [T]

    def first_difference(a, b):
        differs = torch.nonzero((a[0] - b[0]).abs().amax(-1) > 0)
        return int(differs[0]) if len(differs) else None
    names = ["embeddings"] + [f"layer{i}" for i in range(len(windowed) - 2)] + ["final_norm"]
    effect = {"sliding_window": window, "n_tokens": int(logits.shape[0]),
              "max_abs_logit_diff": float(per_position.max()),
              "max_abs_logit_diff_before_window": float(per_position[:window].max()),
              "argmax_changed_positions": int((logits.argmax(-1) != no_window.argmax(-1)).sum()),
              "first_differing_position": {n: first_difference(a, b)
                                           for n, a, b in zip(names, windowed, plain.hidden_states)}}
    if effect["max_abs_logit_diff_before_window"] != 0.0 or effect["max_abs_logit_diff"] < 1.0:
        raise SystemExit(f"gemma3: the sliding window does not act as expected: {effect}")
    return effect


def write_family(family, tree, quantize_bin):
    out = OUT / family.name
    model, hf_tok = write_hf_folder(family, tree, out / "hf")
    expected = write_expected(family, model, hf_tok, out)
    permuted, metadata = write_ggufs(family, tree, quantize_bin, model, out)
    if not family.keep_hf_weights:
        (out / "hf" / "model.safetensors").unlink()
    summary = {"q_k_rows_permuted_by_converter": permuted, "f16_metadata": metadata,
               "min_greedy_margin": {key: float(expected[f"{key}.greedy_margin"].min()) for key in SEQUENCE_KEYS},
               "files": {}}
    if family.name == "llama3":
        summary["rope_scaling_effect"] = rope_scaling_effect(expected)
    if family.name == "gemma3":
        summary["layer_types"] = [(t, model.config.rope_parameters[t]["rope_theta"]) for t in model.config.layer_types]
        summary["sliding_window_effect"] = sliding_window_effect(model, expected)
    if family.norm_offset:
        summary["gguf_norm_weights"] = (f"{family.norm_offset:g} + w: transformers holds w and computes "
                                        f"x * ({family.norm_offset:g} + w); the converter adds {family.norm_offset:g}")
    for path in sorted(out.rglob("*")):
        if path.is_file():
            entry = {"bytes": path.stat().st_size, "sha256": sha256(path)}
            if path.suffix == ".gguf":
                entry["tensors"] = describe_gguf(path)[1]
            summary["files"][str(path.relative_to(OUT))] = entry
    return summary


def print_summary(name, summary):
    print(f"== {name}: Q/K rows permuted by the converter: {summary['q_k_rows_permuted_by_converter'] or 'none'}")
    for key, value in summary["f16_metadata"].items():
        print(f"   {key} = {value}")
    for path, entry in summary["files"].items():
        print(f"   {path}: {entry['bytes']} bytes sha256 {entry['sha256']}")
        for tname, t in entry.get("tensors", {}).items():
            print(f"      {tname:28s} {t['type']:6s} {t['shape']}")
    for key, effect in summary.get("rope_scaling_effect", {}).items():
        print(f"   rope scaling on {key}: {effect}")
    if "sliding_window_effect" in summary:
        print(f"   sliding window on seq2: {summary['sliding_window_effect']}")


README_HEAD = """# Model-family fixtures (llama3, qwen2, qwen3, gemma3)

Written by `reference/make_family_fixtures.py`; do not edit by hand. Regenerate everything with

    ~/.cache/sentinel/venv/bin/python reference/make_family_fixtures.py

or some families only with `--family NAME` (repeatable; the other families' files and manifest entries stay
as they are). It runs `JOBS=1 bench/peers/build_llama_cpp.sh llama-quantize`, which unpacks llama.cpp from
the PyPI sdist llama-cpp-python==0.3.36, SHA-256 pinned, into $SENTINEL_HOME/peers/llama.cpp; the
converter and gguf-py come from that tree. The script is seeded and idempotent: a rerun gives the
same bytes (see the SHA-256 column).

Each family folder holds:

- `hf/config.json`, `hf/model.safetensors`: the random-weight transformers model in float16 (drawn
  with a fixed seed, rounded to float16, so the F16 GGUF holds exactly these weights). Only llama3
  keeps `model.safetensors` in the repository (one family tests Hugging Face folders; the others'
  F16 GGUFs hold the same weights bit for bit, which the script checks before removing them).
- `hf/tokenizer.json`, `hf/tokenizer_config.json`: for llama3, qwen2 and qwen3 a 512-token byte-level
  BPE trained on a built-in corpus with the family's real pre-tokenizer (Split on the Llama-3 or Qwen2
  regex, then ByteLevel without its own regex; NFC normalizer for Qwen), its real special tokens placed
  after the trained vocab, and its real chat template (llama.cpp models/templates/: Llama-3.1-8B-Instruct,
  Qwen2.5-7B-Instruct, Qwen3-0.6B). For gemma3 `hf/tokenizer.model` too: a 512-piece sentencepiece BPE
  with Gemma's settings (byte fallback, digits split, identity normalization, no dummy prefix, whitespace-only
  pieces allowed) and Gemma's special pieces at the real ids (`<pad>` 0, `<eos>` 1, `<bos>` 2, `<unk>` 3,
  `<mask>` 4; `<start_of_turn>` 5 and `<end_of_turn>` 6, 105 and 106 in the real vocab), then the 256 byte
  pieces `<0x00>`..`<0xFF>` (7..262), then the trained pieces; `tokenizer.json` is what transformers'
  GemmaTokenizer converts it to (turn tokens marked special, as in the real file), and the chat template is
  google/gemma-3-*-it's (not in llama.cpp models/templates/; quoted in the script).
- `model.f16.gguf`: llama.cpp `convert_hf_to_gguf.py --outtype f16` of `hf/`, with the pre-tokenizer
  declared as `llama-bpe` (llama3) or `qwen2` (qwen2, qwen3): the converter's hash lookup knows
  only published vocabularies. gemma3 takes the converter's sentencepiece path (`tokenizer.model`;
  no pre-tokenizer to declare), and its layer types are declared as
  `gemma3.attention.sliding_window_pattern` (one bool per layer, true = sliding), the key the converter
  writes for Gemma 3n and Gemma 4 but not for Gemma 3: without it llama.cpp assumes Gemma 3's published
  pattern (every sixth layer global), which would make all three layers sliding.
- `model.<type>.gguf`: `llama-quantize [--pure] model.f16.gguf model.<type>.gguf <TYPE>`.
- `expected.safetensors`: transformers float32 CPU outputs of the hf/ model per sequence `seqN`
  (seq0 a plain sentence; seq1 the system+user conversation rendered by the chat template; seq2
  ~80 tokens with digits, contractions, spaces, a tab and a newline):
  `seqN.ids` [T] int64; `seqN.embeddings`, `seqN.layer0`, `seqN.layer1`, ... (each decoder layer's raw
  output), `seqN.final_norm` [T, 256] f32 (transformers' output_hidden_states is [embeddings,
  layer0, ..., final_norm]; gemma3's embeddings are already scaled by sqrt(256) = 16); `seqN.logits`
  [T, 512] f32; `seqN.greedy` [16] int64 (argmax continuation, no EOS stop, no logits processors) and
  `seqN.greedy_margin` [16] f32 (top-1 minus top-2 logit at each greedy step: a step with a tiny
  margin may flip under f16 arithmetic); llama3 also `seqN.logits_no_rope_scaling` [T, 512] f32 (same
  weights, plain theta-500000 RoPE); gemma3 also `seq2.logits_no_sliding_window` [T, 512] f32 (same
  weights, every layer attending to the whole sequence; layer types and their RoPE thetas kept).
- `expected.json`: the texts of seq0..2 (`add_special_tokens` true for plain text, false for the
  rendered chat, which already holds any BOS) and the `apply_chat_template(...,
  add_generation_prompt=True)` renderings of a system+user and a user/assistant/user conversation
  (qwen3 also with `enable_thinking=False`).

`manifest.json` has the same information as the tables below, plus every GGUF metadata value of
the F16 files.
"""


def type_counts(tensors):
    counts = {}
    for t in tensors.values():
        counts[t["type"]] = counts.get(t["type"], 0) + 1
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def write_readme(manifest, total):
    lines = [README_HEAD, "## Versions", ""]
    lines += [f"- {k}: {v}" for k, v in manifest["versions"].items()]
    lines += [f"- llama.cpp: {manifest['llama_cpp']}", "",
              f"Total size of tests/data/families/ (without this README): {total} bytes.", ""]
    for name, fam in manifest["families"].items():
        permuted = ", ".join(fam["q_k_rows_permuted_by_converter"]) or "none (NEOX rotary: rows as in HF)"
        lines += [f"## {name}", "", f"Q/K weight rows permuted by the converter (ggml rotary pairs): {permuted}.", "",
                  "Smallest greedy top-1/top-2 logit margin: " + ", ".join(
                      f"{k} {m:.4f}" for k, m in fam["min_greedy_margin"].items()) + ".", ""]
        for key, e in fam.get("rope_scaling_effect", {}).items():
            lines.append(f"- Llama 3 RoPE scaling on {key} ({e['n_tokens']} tokens): max |logits - "
                         f"logits_no_rope_scaling| {e['max_abs_logit_diff']:.3f}, argmax changed at "
                         f"{e['argmax_changed_positions']} positions")
        if "rope_scaling_effect" in fam:
            lines.append("")
        if "gguf_norm_weights" in fam:
            lines += [f"Norm weights in the GGUF: {fam['gguf_norm_weights']}.", ""]
        if "layer_types" in fam:
            lines += ["Layers (type, RoPE theta): " + ", ".join(f"{i}: {t} {theta:.0f}" for i, (t, theta)
                                                             in enumerate(fam["layer_types"])) + ".", ""]
        if "sliding_window_effect" in fam:
            e = fam["sliding_window_effect"]
            firsts = ", ".join(f"{k} {v}" for k, v in e["first_differing_position"].items() if v is not None)
            lines += [f"- Sliding window ({e['sliding_window']} tokens) on seq2 ({e['n_tokens']} tokens): max "
                      f"|logits - logits_no_sliding_window| {e['max_abs_logit_diff']:.3f} "
                      f"({e['max_abs_logit_diff_before_window']:g} before position {e['sliding_window']}), argmax "
                      f"changed at {e['argmax_changed_positions']} positions; first position that differs: {firsts}",
                      ""]
        lines += ["F16 GGUF metadata keys: " + ", ".join(f"`{k}`" for k in fam["f16_metadata"]) + ".", "",
                  "| file | bytes | SHA-256 | tensor types |", "|---|---|---|---|"]
        ggufs = {}
        for path, entry in fam["files"].items():
            types = type_counts(entry.get("tensors", {}))
            lines.append(f"| `{path}` | {entry['bytes']} | `{entry['sha256']}` | {types} |")
            if "tensors" in entry:
                ggufs[path.split("/")[-1][len("model."):-len(".gguf")]] = entry["tensors"]
        first = next(iter(ggufs.values()))
        lines += ["", "| tensor | shape (ggml ne) | " + " | ".join(ggufs) + " |", "|---" * (len(ggufs) + 2) + "|"]
        for tname, t in first.items():
            lines.append(f"| `{tname}` | {t['shape']} | " + " | ".join(g[tname]["type"] for g in ggufs.values()) + " |")
        lines.append("")
    (OUT / "README.md").write_text("\n".join(lines))


def gguf_py_version(tree):
    for line in open(os.path.join(tree, "gguf-py", "pyproject.toml"), encoding="utf-8"):
        if line.startswith("version"):
            return line.split("=")[1].strip().strip('"') + " (gguf-py/ of the llama.cpp tree above)"
    return "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=[f.name for f in FAMILIES],
                        help="regenerate only this family (repeatable); the others' files stay as they are")
    families = [f for f in FAMILIES if not parser.parse_args().family or f.name in parser.parse_args().family]
    tree, quantize_bin = llama_cpp_tree()
    import google.protobuf
    import sentencepiece
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__, "sentencepiece": sentencepiece.__version__,
                "protobuf": google.protobuf.__version__, "gguf-py": gguf_py_version(tree)}
    kept = {}
    if len(families) < len(FAMILIES):
        old = json.loads((OUT / "manifest.json").read_text())
        differ = {k: (v, versions[k]) for k, v in old["versions"].items() if versions.get(k) != v}
        if differ:
            raise SystemExit(f"the other families were written with other versions {differ}: regenerate all of them")
        kept = {name: fam for name, fam in old["families"].items() if name not in {f.name for f in families}}
    for family in families:
        shutil.rmtree(OUT / family.name, ignore_errors=True)
    manifest = {"llama_cpp": "vendor/llama.cpp of the PyPI sdist llama-cpp-python==0.3.36 "
                             "(bench/peers/build_llama_cpp.sh)",
                "versions": versions, "families": {}}
    written = {}
    for family in families:
        summary = write_family(family, tree, quantize_bin)
        print_summary(family.name, summary)
        written[family.name] = summary
    for family in FAMILIES:  # in FAMILIES order
        manifest["families"][family.name] = written.get(family.name) or kept[family.name]
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file() and p.name != "README.md")
    write_readme(manifest, total)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"tests/data/families: {total} bytes in all")


if __name__ == "__main__":
    main()
