"""Plots a `sentinel train` log (OUT.log.jsonl): training loss per update and validation perplexity.

    python3 bench/plot_training.py docs/results/training.log.jsonl --out docs/results/training.png \
        --before 80.06 --full 22.43

--before and --full draw the validation perplexity of the untrained model and of the uncompressed
model as reference lines. Needs matplotlib.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log", type=Path, help="the JSON-lines log of sentinel train")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--before", type=float, help="validation perplexity before training (step 0)")
    parser.add_argument("--full", type=float, help="validation perplexity without compression")
    parser.add_argument("--window", type=int, default=10, help="updates in the moving average of the loss")
    args = parser.parse_args()

    steps, losses, val_steps, val_ppl = [], [], [], []
    for line in args.log.read_text().splitlines():
        record = json.loads(line)
        if "loss" in record:
            steps.append(record["step"])
            losses.append(record["loss"])
        elif "val_ppl" in record:
            val_steps.append(record["step"])
            val_ppl.append(record["val_ppl"])
    if args.before is not None:
        val_steps.insert(0, 0)
        val_ppl.insert(0, args.before)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(steps, losses, alpha=0.35, label="loss per update")
    w = max(1, args.window)
    smooth = [sum(losses[max(0, i - w + 1):i + 1]) / len(losses[max(0, i - w + 1):i + 1]) for i in range(len(losses))]
    left.plot(steps, smooth, label=f"moving average ({w})")
    left.set_xlabel("update")
    left.set_ylabel("cross-entropy (ordinary tokens)")
    left.set_title("training loss")
    left.grid(alpha=0.3)
    left.legend()
    right.plot(val_steps, val_ppl, marker="o", label="sentinel, compressed (validation)")
    if args.full is not None:
        right.axhline(args.full, color="black", linewidth=1, label="no compression")
    right.set_xlabel("update")
    right.set_ylabel("perplexity")
    right.set_title("validation perplexity (held-out text)")
    right.grid(alpha=0.3)
    right.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
