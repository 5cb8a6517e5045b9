// The CPU kernels of the quantized path, one table of function pointers per instruction set.
// Every table computes the same functions: Scalar is the plain reference (portable C++), Avx2 the
// x86-64 AVX2/FMA/F16C version and Avx512 the AVX-512 VNNI one (Zen 4 and later, Ice Lake and
// later), each tested against Scalar over odd sizes and unaligned inputs
// (tests/unit/base/test_kernels.cpp, test_kquant_kernels.cpp). kernels() picks the best table the CPU supports at run
// time; nothing here assumes the build machine's instruction set.
#pragma once

#include <cstdint>
#include <string>

#include "sentinel/kernels/blocks.h"

namespace sentinel::kernels {

enum class Isa { Scalar, Avx2, Avx512 };

// Element types a weight row or a KV row can have on this path. KV rows are F32, F16, BF16 or Q8_0;
// weight rows any of them (Q5_0 .. Q6_K are what Q4_K_M, Q5_K_M and Q6_K GGUF files hold).
enum class RowType : uint8_t { F32, F16, BF16, Q4_0, Q4_1, Q8_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K };
std::string row_type_name(RowType type);     // "f32", "q4_0", "q4_k", ...
int64_t row_type_block(RowType type);        // values per block: 1 (float types), 32 (Q4_0 .. Q5_1), 256 (K-quants)
int64_t row_bytes(RowType type, int64_t n);  // bytes of n values (n a multiple of row_type_block)
bool is_block_type(RowType type);            // every quantized type: dotted with BlockQ8A/BlockQ16A activations

// Tokens one call of a dot4_*_q16 kernel takes: its T x 4 accumulators fill AVX2's 16 registers.
inline constexpr int64_t kMaxDotTokens = 4;

struct KernelTable {
  Isa isa;
  // x [n] -> y [n / 32] blocks; n % 32 == 0.
  void (*quantize_q8a)(const float* x, BlockQ8A* y, int64_t n);
  // sum_i w[i] * x[i] over n_blocks blocks of a weight row and an activation row.
  float (*dot_q4_0)(const BlockQ4_0* w, const BlockQ8A* x, int64_t n_blocks);
  float (*dot_q4_1)(const BlockQ4_1* w, const BlockQ8A* x, int64_t n_blocks);
  float (*dot_q8_0)(const BlockQ8_0* w, const BlockQ8A* x, int64_t n_blocks);
  // Four weight rows against one activation row at once: out[r] = dot(rows[r], x). The
  // activation blocks are loaded once and the four accumulation chains run side by side, which
  // a decode step (one activation row per matrix) needs to keep the core busy.
  void (*dot4_q4_0)(const BlockQ4_0* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  void (*dot4_q4_1)(const BlockQ4_1* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  void (*dot4_q8_0)(const BlockQ8_0* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  void (*dot4_q5_0)(const BlockQ5_0* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  void (*dot4_q5_1)(const BlockQ5_1* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  // K-quant rows: n_blocks still counts 32-value activation blocks, 8 per superblock
  // (n_blocks % 8 == 0); rows[r] points at the row's first superblock.
  void (*dot4_q4_k)(const BlockQ4_K* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  void (*dot4_q5_k)(const BlockQ5_K* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  void (*dot4_q6_k)(const BlockQ6_K* const* rows, const BlockQ8A* x, int64_t n_blocks, float* out);
  // The same against 16-bit activations (x [n] -> y [n / 32], n % 32 == 0), for 1 to
  // kMaxDotTokens tokens at once: x [n_tokens][n_blocks] -> out [n_tokens][4]. A pass of a few
  // rows (a sentinel step, a batch) unpacks each weight block once for all its tokens, and each
  // token's result is bit for bit what a call with that token alone gives.
  void (*quantize_q16a)(const float* x, BlockQ16A* y, int64_t n);
  void (*dot4_q4_0_q16)(const BlockQ4_0* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q4_1_q16)(const BlockQ4_1* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q8_0_q16)(const BlockQ8_0* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q5_0_q16)(const BlockQ5_0* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q5_1_q16)(const BlockQ5_1* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q4_k_q16)(const BlockQ4_K* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q5_k_q16)(const BlockQ5_K* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  void (*dot4_q6_k_q16)(const BlockQ6_K* const* rows, const BlockQ16A* x, int64_t n_tokens, int64_t n_blocks, float* out);
  // Four Q8_0 rows against float activations (no 8-bit rounding of x): the tied LM head, where
  // the top token is decided and 8-bit activations cost ~1% top-token agreement.
  void (*dot4_q8_0_f32)(const BlockQ8_0* const* rows, const float* x, int64_t n_blocks, float* out);
  // sum_i w[i] * x[i] over n floats of activations, for float weight rows.
  float (*dot_f32)(const float* w, const float* x, int64_t n);
  float (*dot_f16)(const uint16_t* w, const float* x, int64_t n);
  float (*dot_bf16)(const uint16_t* w, const float* x, int64_t n);
  // A row of any RowType to float: n values (n % row_type_block(type) == 0), bit-identical to
  // io/dequant's dequantize of the same bytes.
  void (*row_to_f32)(RowType type, const void* row, float* out, int64_t n);
  // One float row into KV storage of type F32, F16, BF16 or Q8_0 (n % 32 == 0 for Q8_0).
  void (*f32_to_row)(RowType type, const float* x, void* row, int64_t n);
  // Attention over KV rows as the cache stores them: n_rows rows of n values of `type` (F32, F16,
  // BF16 or Q8_0), `stride` bytes apart, shared by n_q query heads (a GQA group). Rows are widened
  // in registers, never copied out. A row's result never depends on where it sits among the rows
  // (a key must score the same whether decoded alone or in a chunk: docs/method.md section 6).
  // Scores: out[h * out_stride + r] = scale * dot(q + h * n, row r); max[h] = max_r of them.
  void (*scores)(RowType type, const void* rows, int64_t stride, int64_t n_rows, int64_t n, const float* q, int64_t n_q,
                 float scale, float* out, int64_t out_stride, float* max);
  // Output: acc[h * acc_stride + i] += sum_r p[h * p_stride + r] * row r [i], i < n.
  void (*accumulate)(RowType type, const void* rows, int64_t stride, int64_t n_rows, int64_t n, const float* p,
                     int64_t p_stride, int64_t n_q, float* acc, int64_t acc_stride);
  // x[i] = exp(x[i] - max) in place; returns the sum. exp(-inf) = 0.
  float (*exp_shift_sum)(float* x, int64_t n, float max);
  // y = x * rsqrt(mean(x^2) + eps) * w (RMSNorm), n values; y may be x.
  void (*rms_norm)(const float* x, const float* w, float eps, float* y, int64_t n);
  // out[i] = silu(gate[i]) * up[i].
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
};

const KernelTable& kernel_table(Isa isa);  // throws Error if the CPU lacks the instructions
bool isa_supported(Isa isa);
Isa best_isa();                            // the fastest table this CPU can run
const KernelTable& kernels();              // kernel_table(active_isa())
// The table chosen once per process: best_isa(), or SENTINEL_ISA=scalar|avx2|avx512 (comparisons,
// bug reports; throws if the CPU lacks it). Tests that need one table ask kernel_table(isa).
Isa active_isa();
std::string isa_name(Isa isa);  // "scalar", "avx2", "avx512"
Isa parse_isa(const std::string& name);

}  // namespace sentinel::kernels
