// ggml tensor types: their block geometry, and dequantization of the common ones to f32 with
// ggml's exact bit layouts (ggml-quants.c, dequantize_row_*). Not quantization, and no
// matrix kernels: the model converts weights to float once at load time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sentinel/io/gguf.h"

namespace sentinel {

// Whether ggml knows the type value (a file may carry ids the GgmlType enum does not name).
bool ggml_type_is_known(GgmlType type);
// Elements per block: 1 for F32/F16/BF16, 32 for Q4_0..Q8_1, 256 for the K-quants.
// Throws Error for a type value ggml does not know.
int64_t ggml_block_size(GgmlType type);
// Bytes per block: 4 for F32, 18 for Q4_0, 144 for Q4_K, ...
int64_t ggml_type_size(GgmlType type);
// Bytes of n consecutive elements; throws unless n >= 0 is a multiple of the block size and the
// byte count fits in int64.
int64_t ggml_row_bytes(GgmlType type, int64_t n);

// Whether dequantize() handles the type: F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K.
bool ggml_can_dequantize(GgmlType type);

// Dequantizes dst.size() elements from src, which must hold exactly ggml_row_bytes(type,
// dst.size()) bytes. Throws Error on a size mismatch or an unsupported type.
void dequantize(GgmlType type, std::span<const uint8_t> src, std::span<float> dst);

// The whole tensor as f32, in ggml order (dims[0] fastest). Throws Error naming the tensor
// if its type is not supported.
std::vector<float> dequantize(const GgufTensorInfo& tensor);

// IEEE half and bfloat16 to float, exact (subnormals, infinities and NaN payloads kept).
float f16_to_f32(uint16_t half);
float bf16_to_f32(uint16_t bf16);

}  // namespace sentinel
