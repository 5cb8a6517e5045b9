#!/usr/bin/env python3
"""Fixtures for the GGUF / dequantization / safetensors readers (tests/unit/base/test_{gguf,dequant,safetensors}.cpp).

Writes into tests/data/io/ (all small, about 40 KB together):
  all_types_v3.gguf            GGUF v3 written by gguf-py's GGUFWriter: every metadata value type
                               (nested, empty and unicode arrays too), general.alignment = 64, and
                               tensors of types F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K Q6_K
  all_types_v3.expected.json   its metadata (type + value) and tensor list (name, type, ggml dims, offset)
  all_types_v3.expected.bin    every tensor dequantized by gguf.quants.dequantize (the reference), f32 LE,
                               concatenated in tensor order (see "values_offset" in the .json)
  small_v2.gguf                a GGUF v2 (gguf-py writes v3; v2 has the same layout, so the version is patched)
  python.safetensors           written by the Python `safetensors` library: every dtype, a scalar, an
                               empty tensor, and __metadata__
  python.safetensors.expected.json   its tensors' dtype, shape and values
  smollm2_q4_1_samples.json    only if the default model is installed: values of a few tensors of
                               SmolLM2-135M-Instruct.Q4_1.gguf dequantized by gguf-py (tests/parity/base/test_gguf_model.cpp)

Regenerate: python3 reference/make_io_fixtures.py   (needs gguf==0.19, numpy, safetensors, torch)
Everything is seeded: running it twice writes the same values (python.safetensors may differ in the
order of its JSON header's __metadata__ keys, which the Rust library does not fix).
"""
import json
import os
import struct
from pathlib import Path

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q, GGUFValueType as V
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "io"
MODEL = Path(os.environ.get("SENTINEL_HOME", Path.home() / ".cache" / "sentinel")) / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


class Writer(gguf.GGUFWriter):
    """GGUFWriter refuses empty arrays, which the format allows (count 0); this lets them through when the
    element type is given, so the reader's empty-array path has a fixture."""

    def _pack_val(self, val, vtype, add_vtype, sub_type=None):
        if vtype == V.ARRAY and len(val) == 0 and sub_type is not None:
            return (self._pack("I", vtype) if add_vtype else b"") + self._pack("I", sub_type) + self._pack("Q", 0)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def f32(x):
    """The double a float32 widens to: what GgufValue::as_float() returns for a FLOAT32."""
    return float(np.float32(x))


# key -> (type name, value as written, value expected back). Arrays of arrays nest; empty arrays have a type.
METADATA = [
    ("test.uint8", V.UINT8, 200),
    ("test.int8", V.INT8, -100),
    ("test.uint16", V.UINT16, 60000),
    ("test.int16", V.INT16, -30000),
    ("test.uint32", V.UINT32, 4000000000),
    ("test.int32", V.INT32, -2000000000),
    ("test.float32", V.FLOAT32, 0.1),
    ("test.bool_true", V.BOOL, True),
    ("test.bool_false", V.BOOL, False),
    ("test.string", V.STRING, "h\u00e9llo \u4e16\u754c \U0001f642"),
    ("test.string_empty", V.STRING, ""),
    ("test.uint64_max", V.UINT64, 2**64 - 1),
    ("test.int64_min", V.INT64, -(2**63)),
    ("test.float64", V.FLOAT64, 1.0 / 3.0),
    ("test.array_int32", V.ARRAY, [1, -2, 3, 2147483647]),
    ("test.array_string", V.ARRAY, ["<|endoftext|>", "\u0120the", "", "\u4e16\u754c", "a'b\\c\n"]),
    ("test.array_float32", V.ARRAY, [0.5, -1.25, 1e-5]),
    ("test.array_bool", V.ARRAY, [True, False, True]),
    ("test.array_nested", V.ARRAY, [[1, 2, 3], [4], [5, 6]]),
    ("test.array_nested_strings", V.ARRAY, [["a", "b"], ["c"]]),
    ("test.array_empty", V.ARRAY, []),
]


def add_metadata(writer):
    for key, vtype, value in METADATA:
        if vtype == V.ARRAY:
            if key == "test.array_empty":
                writer.add_key_value(key, value, V.ARRAY, sub_type=V.UINT32)
            elif key == "test.array_float32":
                writer.add_key_value(key, value, V.ARRAY, sub_type=V.FLOAT32)
            else:
                writer.add_array(key, value)
        else:
            writer.add_key_value(key, value, vtype)


def expected_value(vtype, value, sub_type=None):
    """JSON form the C++ test compares against: {"type", "value"} or {"type": "ARRAY", "element_type", "items"}."""
    if vtype != V.ARRAY:
        if vtype == V.FLOAT32:
            value = f32(value)
        return {"type": vtype.name, "value": value}
    if sub_type is None:
        sub_type = V.get_type(value[0])
        if sub_type == V.FLOAT32 and isinstance(value[0], float):
            sub_type = V.FLOAT32
    items = [expected_value(sub_type, v) for v in value]
    return {"type": "ARRAY", "element_type": sub_type.name, "items": items}


def special_f16():
    """Halves covering every class: zeros, min subnormal, a subnormal, min normal, max, infinities, NaN."""
    bits = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00,
            0x7C01, 0xFE00, 0x3555]
    return np.array(bits, dtype=np.uint16).view(np.float16)


def special_bf16_bits():
    return np.array([0x0000, 0x8000, 0x0001, 0x3F80, 0xC000, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x0080], dtype=np.uint16)


def random_k_blocks(rng, qtype, n_blocks):
    """K-quant blocks of random bits with sane f16 scales: gguf-py cannot quantize to these types, but its
    dequantizer is the reference, and random bits exercise every nibble and scale path."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    blocks = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    f16_fields = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for offset in f16_fields:
        halves = rng.uniform(0.001, 0.05, size=n_blocks).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
        blocks[:, offset:offset + 2] = halves
    return blocks


def tensor_specs(rng):
    """(name, raw bytes as written, torch-order shape, ggml type)."""
    specs = []
    a = rng.standard_normal((3, 5)).astype(np.float32)
    a[0, :3] = [np.inf, -0.0, 1e-45]  # an f32 subnormal passes through untouched
    specs.append(("f32", a, a.shape, Q.F32))
    b = rng.standard_normal((2, 3, 1, 4)).astype(np.float32)
    specs.append(("f32_4d", b, b.shape, Q.F32))
    c = np.concatenate([special_f16(), rng.standard_normal(16).astype(np.float16)]).reshape(4, 8)
    specs.append(("f16", c, c.shape, Q.F16))
    bf = np.concatenate([special_bf16_bits(), gguf.quants.quantize(rng.standard_normal(6).astype(np.float32), Q.BF16)
                         .view(np.uint16)]).reshape(2, 8)
    specs.append(("bf16", bf.view(np.uint8), bf.shape, Q.BF16))
    for qtype in (Q.Q8_0, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1):
        x = rng.standard_normal((3, 64)).astype(np.float32)
        x[0] = 0.0  # an all-zero block (d = 0)
        specs.append((qtype.name.lower(), gguf.quants.quantize(x, qtype), x.shape, qtype))
    for qtype in (Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        blocks = random_k_blocks(rng, qtype, 2)
        specs.append((qtype.name.lower(), blocks, (2, 256), qtype))
    return specs


def write_all_types():
    rng = np.random.default_rng(1234)
    path = OUT / "all_types_v3.gguf"
    writer = Writer(str(path), arch="testarch")
    writer.add_custom_alignment(64)
    add_metadata(writer)
    specs = tensor_specs(rng)
    for name, data, shape, qtype in specs:
        if qtype in (Q.F32, Q.F16):
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, np.ascontiguousarray(data).view(np.uint8), raw_dtype=qtype)  # shape from the byte rows
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    # Read back with the reference reader, and take the expected values from it.
    reader = gguf.GGUFReader(str(path))
    values = []
    tensors = []
    n_values = 0
    for t in reader.tensors:
        deq = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        tensors.append({"name": t.name, "type": t.tensor_type.name, "dims": [int(d) for d in t.shape],
                        "offset": int(t.data_offset - reader.data_offset), "values_offset": n_values,
                        "n_values": int(deq.size)})
        values.append(deq)
        n_values += deq.size
    np.concatenate(values).astype("<f4").tofile(OUT / "all_types_v3.expected.bin")

    metadata = {"general.architecture": {"type": "STRING", "value": "testarch"},
                "general.alignment": {"type": "UINT32", "value": 64}}
    for key, vtype, value in METADATA:
        sub = {"test.array_empty": V.UINT32, "test.array_float32": V.FLOAT32}.get(key)
        metadata[key] = expected_value(vtype, value, sub)
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    expected = {"version": 3, "alignment": int(reader.alignment), "keys_in_order": keys, "metadata": metadata,
                "tensors": tensors}
    (OUT / "all_types_v3.expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")


def write_small_v2():
    path = OUT / "small_v2.gguf"
    writer = gguf.GGUFWriter(str(path), arch="llama")
    writer.add_uint32("llama.block_count", 2)
    writer.add_string("general.name", "v2 fixture")
    writer.add_tensor("weight", np.arange(8, dtype=np.float32).reshape(2, 4))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = bytearray(path.read_bytes())
    assert data[:4] == b"GGUF" and struct.unpack_from("<I", data, 4)[0] == 3
    struct.pack_into("<I", data, 4, 2)
    path.write_bytes(bytes(data))


def write_safetensors():
    tensors = {
        "f64": torch.tensor([[1.5, -2.25], [1e300, 0.0]], dtype=torch.float64),
        "f32": (torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.25 - 1.0),
        "f16": torch.tensor([1.0, -0.5, 65504.0, 2.0**-14, 2.0**-24], dtype=torch.float16),
        "bf16": torch.tensor([1.0, -2.0, 3.140625], dtype=torch.bfloat16),
        "i64": torch.tensor([-(2**62), 2**62, 0], dtype=torch.int64),
        "i32": torch.tensor([[-7, 8], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
        "i8": torch.tensor([-128, 127, 0, 1], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.0, dtype=torch.float32),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "model.layers.0.self_attn.q_proj.weight": torch.full((2, 2), 0.125, dtype=torch.float32),
    }
    metadata = {"format": "pt", "note": "h\u00e9llo"}
    save_file(tensors, str(OUT / "python.safetensors"), metadata=metadata)
    dtype_names = {torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                   torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                   torch.bool: "BOOL"}
    expected = {"metadata": metadata, "tensors": {}}
    for name, t in tensors.items():
        values = t.reshape(-1).tolist() if t.dtype not in (torch.float16, torch.bfloat16) else t.float().reshape(-1).tolist()
        expected["tensors"][name] = {"dtype": dtype_names[t.dtype], "shape": list(t.shape),
                                     "values": [int(v) if isinstance(v, bool) else v for v in values]}
    (OUT / "python.safetensors.expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")


def write_model_samples():
    if not MODEL.exists():
        print(f"skipping smollm2_q4_1_samples.json: {MODEL} is not installed (scripts/setup.sh installs it)")
        return
    reader = gguf.GGUFReader(str(MODEL))
    by_name = {t.name: t for t in reader.tensors}

    def row(name, index):
        t = by_name[name]
        return gguf.quants.dequantize(t.data[index:index + 1], t.tensor_type).reshape(-1)

    samples = {
        "blk.0.attn_q.weight": {"row": 0, "values": row("blk.0.attn_q.weight", 0)[:64]},
        "token_embd.weight": {"row": 0, "values": row("token_embd.weight", 0)},
        "token_embd.weight#49151": {"row": 49151, "values": row("token_embd.weight", 49151)},
        "output_norm.weight": {"row": 0, "values": row("output_norm.weight", 0)},
        "blk.29.ffn_down.weight": {"row": 575, "values": row("blk.29.ffn_down.weight", 575)},
    }
    out = {"file": MODEL.name, "n_tensors": len(reader.tensors), "samples": []}
    for key, s in samples.items():
        name = key.split("#")[0]
        t = by_name[name]
        out["samples"].append({"tensor": name, "type": t.tensor_type.name, "dims": [int(d) for d in t.shape],
                               "row": s["row"], "values": [float(v) for v in s["values"].astype(np.float32)]})
    (OUT / "smollm2_q4_1_samples.json").write_text(json.dumps(out) + "\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    write_all_types()
    write_small_v2()
    write_safetensors()
    write_model_samples()
    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:8d}  {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
