"""Writes the training parity fixture tests/data/tiny/train-reference.safetensors: the loss and the
gradient of every trainable tensor for one batch, and a 10-update AdamW trajectory, computed by
Hugging Face transformers + peft on the tiny model, with the sentinel layout built here from
docs/method.md sections 2-5 alone (make_sentinel_fixtures.build_layout), so the C++ trainer is
checked against code we did not write.

    ~/.cache/sentinel/venv/bin/python reference/make_train_fixtures.py

(peft pinned in reference/requirements.txt; run it again after reference/make_tiny_model.py).

Setup, float32 on the CPU, eager attention: LoraConfig(r=4, lora_alpha=8, lora_dropout=0,
target_modules q,k,v,o) and, under prefix "all.", the same with all seven projections; lora_B
starts seeded non-zero (peft starts it at zero, which would make every lora_A gradient zero and
the test blind); the two sentinel rows (<CL>, <CR>) are a trainable leaf appended to the input
embeddings, everything else frozen. Labels: at an ordinary row, the next ordinary token of the
sequence; sentinels and the last ordinary token take none (-100). Loss: mean cross-entropy over
the labelled rows of the batch.

Tensors:
  tokens                  [24] i64       ordinary tokens of TINY_TEXT
  spans{b}                [n, 2] i64     explicit spans of sequence b (ordinary indices)
  batch.ids, .positions   [2, N] i64     layout (sentinels n_vocab, n_vocab + 1), position ids
  batch.allow             [2, N, N] bool dense mask, True = may attend
  batch.labels            [2, N] i64
  {p}init.<peft name>     initial LoRA tensors, named as peft saves them (p = "" or "all.")
  {p}init.sentinel_embeddings [2, n_embd]
  {p}loss                 [1] f32        loss of the batch (both sequences in one forward pass)
  {p}grad.<name>          gradient of each trainable tensor (LoRA by peft name, sentinel_embeddings)
  full.loss, full.grad.<HF name>, full.grad.sentinel_embeddings, full.init.sentinel_embeddings
                          the same batch under full fine-tuning (every base weight and the rows train)
  traj.losses             [10] f32       AdamW trajectory (q,k,v,o setup): update u reads sequence 0 then
                                         sequence 1 as two micro-batches (accumulation 2, each loss / 2),
                                         clip_grad_norm_ 1.0, lr 5e-3, weight decay 0.01,
                                         get_linear_schedule_with_warmup(warmup 2, total 10)
  traj.lrs, traj.grad_norms [10] f32     learning rate used and gradient norm before clipping
  traj.final.<name>       every trainable tensor after the 10 updates
  peft.logits             [24, n_vocab] f32  a plain causal forward over `tokens` of a fresh peft model
                                         whose LoRA state was loaded from the traj.final tensors BY THEIR
                                         NAMES (set_peft_model_state_dict, no unexpected or missing
                                         LoRA keys allowed): what a Python user loading a Sentinel
                                         adapter with peft gets, for the merged C++ model to match
"""
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from make_sentinel_fixtures import TINY_DIR, TINY_TEXT, TINY_TOKENS, build_layout, sentinel_rows

SEED = 2310
LAYOUTS = [[(3, 8), (12, 18)], [(0, 4), (15, 24)]]  # two spans each: equal lengths, one batch
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
ALL = ATTENTION + ["gate_proj", "up_proj", "down_proj"]
STEPS, LR, WEIGHT_DECAY, WARMUP, CLIP = 10, 5e-3, 0.01, 2, 1.0


def labels_for(layout_ids, ordinary_rows):
    labels = torch.full((len(layout_ids),), -100, dtype=torch.int64)
    for a, b in zip(ordinary_rows[:-1].tolist(), ordinary_rows[1:].tolist()):
        labels[a] = layout_ids[b]
    return labels


def make_batch(ids, n_vocab):
    out = {k: [] for k in ("ids", "positions", "allow", "labels")}
    for spans in LAYOUTS:
        layout_ids, positions, allow, ordinary = build_layout(ids, spans, n_vocab, n_vocab + 1)
        out["ids"].append(layout_ids)
        out["positions"].append(positions)
        out["allow"].append(allow)
        out["labels"].append(labels_for(layout_ids, ordinary))
    return {k: torch.stack(v) for k, v in out.items()}


def peft_model(targets):
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    base = LlamaForCausalLM.from_pretrained(str(TINY_DIR / "hf"), dtype=torch.float32,
                                            attn_implementation="eager").eval()
    torch.manual_seed(SEED)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                                            bias="none"))
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    rows = torch.nn.Parameter(sentinel_rows(base))
    return model, rows


def lora_params(model):
    """Trainable LoRA tensors by the name peft saves them under (adapter name removed)."""
    return {n.replace(".default", ""): p for n, p in model.named_parameters() if p.requires_grad}


def loss_of(model, rows, batch, which=None, train_table=False):
    sel = slice(None) if which is None else slice(which, which + 1)
    table = model.get_input_embeddings().weight
    table = torch.cat([table if train_table else table.detach(), rows], 0)
    embeds = table[batch["ids"][sel]]  # [B, N, n_embd]
    additive = torch.zeros(batch["allow"][sel].shape).masked_fill(~batch["allow"][sel], float("-inf"))[:, None]
    logits = model(inputs_embeds=embeds, position_ids=batch["positions"][sel], attention_mask=additive,
                   use_cache=False).logits
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["labels"][sel].reshape(-1), ignore_index=-100)


def one_step(prefix, targets, batch, tensors):
    model, rows = peft_model(targets)
    params = lora_params(model)
    for n, p in params.items():
        tensors[f"{prefix}init.{n}"] = p.detach().clone()
    tensors[f"{prefix}init.sentinel_embeddings"] = rows.detach().clone()
    loss = loss_of(model, rows, batch)
    loss.backward()
    tensors[f"{prefix}loss"] = loss.detach().reshape(1)
    for n, p in params.items():
        tensors[f"{prefix}grad.{n}"] = p.grad.detach().clone()
    tensors[f"{prefix}grad.sentinel_embeddings"] = rows.grad.detach().clone()
    print(f"{prefix or 'qkvo.'} loss {loss.item():.6f}, {len(params)} LoRA tensors", file=sys.stderr)


def full_step(batch, tensors):
    """Full fine-tuning: every weight of the base model and the sentinel rows train."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(TINY_DIR / "hf"), dtype=torch.float32,
                                             attn_implementation="eager").eval()
    rows = torch.nn.Parameter(sentinel_rows(model))
    loss = loss_of(model, rows, batch, train_table=True)
    loss.backward()
    tensors["full.loss"] = loss.detach().reshape(1)
    for n, p in model.named_parameters():
        tensors[f"full.grad.{n}"] = p.grad.detach().clone()
    tensors["full.grad.sentinel_embeddings"] = rows.grad.detach().clone()
    tensors["full.init.sentinel_embeddings"] = rows.detach().clone()
    print(f"full loss {loss.item():.6f}", file=sys.stderr)


def trajectory(batch, tensors):
    from transformers import get_linear_schedule_with_warmup

    model, rows = peft_model(ATTENTION)
    params = lora_params(model)
    everything = list(params.values()) + [rows]
    opt = torch.optim.AdamW(everything, lr=LR, weight_decay=WEIGHT_DECAY, foreach=False)
    sched = get_linear_schedule_with_warmup(opt, WARMUP, STEPS)
    losses, lrs, norms = [], [], []
    for _ in range(STEPS):
        opt.zero_grad()
        total = 0.0
        for which in range(2):
            loss = loss_of(model, rows, batch, which)
            (loss / 2).backward()
            total += loss.item() / 2
        norms.append(torch.nn.utils.clip_grad_norm_(everything, CLIP).item())
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
        losses.append(total)
    tensors["traj.losses"] = torch.tensor(losses, dtype=torch.float32)
    tensors["traj.lrs"] = torch.tensor(lrs, dtype=torch.float32)
    tensors["traj.grad_norms"] = torch.tensor(norms, dtype=torch.float32)
    for n, p in params.items():
        tensors[f"traj.final.{n}"] = p.detach().clone()
    tensors["traj.final.sentinel_embeddings"] = rows.detach().clone()
    peft_logits(tensors)
    print("trajectory " + " ".join(f"{x:.5f}" for x in losses), file=sys.stderr)


def peft_logits(tensors):
    """Loads the trained LoRA tensors into a fresh peft model by name, as a user of the adapter would."""
    from peft import set_peft_model_state_dict

    model, _ = peft_model(ATTENTION)
    state = {k[len("traj.final."):]: v for k, v in tensors.items()
             if k.startswith("traj.final.base_model.")}
    result = set_peft_model_state_dict(model, state)
    assert not result.unexpected_keys, f"peft does not know these names: {result.unexpected_keys[:4]}"
    missing = [k for k in result.missing_keys if "lora_" in k]
    assert not missing, f"peft expected LoRA tensors we do not name: {missing[:4]}"
    with torch.no_grad():
        logits = model(input_ids=tensors["tokens"][None], use_cache=False).logits[0]
    tensors["peft.logits"] = logits.detach().clone()


def main():
    from tokenizers import Tokenizer
    from transformers import AutoConfig

    torch.use_deterministic_algorithms(True)
    n_vocab = AutoConfig.from_pretrained(str(TINY_DIR / "hf")).vocab_size
    ids = Tokenizer.from_file(str(TINY_DIR / "hf" / "tokenizer.json")).encode(TINY_TEXT).ids[:TINY_TOKENS]
    assert len(ids) == TINY_TOKENS, len(ids)
    batch = make_batch(ids, n_vocab)
    tensors = {"tokens": torch.tensor(ids, dtype=torch.int64)}
    for b, spans in enumerate(LAYOUTS):
        tensors[f"spans{b}"] = torch.tensor(spans, dtype=torch.int64)
    for k, v in batch.items():
        tensors[f"batch.{k}"] = v
    one_step("", ATTENTION, batch, tensors)
    one_step("all.", ALL, batch, tensors)
    full_step(batch, tensors)
    trajectory(batch, tensors)
    path = TINY_DIR / "train-reference.safetensors"
    import peft
    import transformers
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path),
              metadata={"generator": "reference/make_train_fixtures.py", "torch": torch.__version__,
                        "transformers": transformers.__version__, "peft": peft.__version__})
    print(f"wrote {path} ({path.stat().st_size} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
