#!/usr/bin/env python3
"""Writes valid session state files (include/sentinel/server/state_file.h) for fuzz_state_file to
start from: versions 2 and 3, uncompressed and compressed, with explicit spans, a sliding-window
layer and a checkpoint record, all under the fingerprint the target expects ("fuzz").

    python3 fuzz/make_state_seeds.py OUT_DIR
"""
import hashlib
import json
import random
import struct
import sys
from pathlib import Path

ROW_TYPES = {"f32": 0, "f16": 1, "bf16": 2, "q8_0": 5}


def record(tokens, cells, *, method="none", ratio=0.0, spans=(), n_layer=2, n_head_kv=1, row_bytes=8,
           row_type="f16", window_begin=0, sliding=(), seed=0, layout="stream"):
    rng = random.Random(seed)
    payload = b"".join(struct.pack("<i", t) for t in tokens)
    payload += b"".join(struct.pack("<qBii", pos, kind, 0, span) for pos, kind, span in cells)
    layer_cells = []
    for layer in range(n_layer):
        n = len(cells) - window_begin if layer in sliding else len(cells)
        layer_cells.append(n)
        rows = bytes(rng.randrange(256) for _ in range(n_head_kv * n * row_bytes))
        payload += rows + rows[::-1]  # K, then V
    header = {
        "format": "sentinel-session-state", "model_fingerprint": "fuzz", "model": "the fuzz model",
        "method": method, "layout": layout, "ratio": ratio, "span": 16, "window": 0, "sinks": 4, "seed": 0,
        "cl_id": 100 if method == "sentinel" else -1, "cr_id": 101 if method == "sentinel" else -1,
        "spans": [list(s) for s in spans], "n_tokens": len(tokens), "n_cells": len(cells), "n_layer": n_layer,
        "window_begin": window_begin, "layer_cells": layer_cells, "n_head_kv": n_head_kv, "row_bytes": row_bytes,
        "row_type": row_type, "row_type_id": ROW_TYPES[row_type],
        "stats": {"ordinary_seen": len(tokens), "sentinels_fed": 0, "cells_evicted": 0, "peak_cells": len(cells),
                  "peak_bytes": 2 * n_layer * n_head_kv * len(cells) * row_bytes},
        "payload_bytes": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + payload


def state_file(records, version=3):
    head = b"SNTLSTATE\0" + struct.pack("<I", version)
    if version >= 3:
        head += struct.pack("<I", len(records))
    return head + b"".join(records)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tokens = list(range(1, 13))
    full = [(i, 0, -1) for i in range(12)]
    # Sentinel, explicit span [2, 8): <CL> and <CR> kept, the span's tokens gone.
    compressed = [(0, 0, -1), (1, 0, -1), (2, 1, 0), (8, 2, 0), (8, 0, -1), (9, 0, -1), (10, 0, -1), (11, 0, -1)]
    seeds = {
        "v2_full.state": state_file([record(tokens, full)], version=2),
        "v3_full.state": state_file([record(tokens, full, row_type="f32", row_bytes=16)]),
        "v3_sentinel.state": state_file([record(tokens, compressed, method="sentinel", ratio=0.5, spans=[(2, 8)],
                                                      layout="periodic")]),
        "v3_window.state": state_file([record(tokens, full, n_layer=3, window_begin=4, sliding=(1,))]),
        "v3_checkpoint.state": state_file([record(tokens, full, method="streaming", ratio=0.25),
                                           record(tokens[:11], full[:11], method="streaming", ratio=0.25, seed=1)]),
        "v3_q8.state": state_file([record(tokens[:4], full[:4], row_type="q8_0", row_bytes=34, n_head_kv=2)]),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main()
