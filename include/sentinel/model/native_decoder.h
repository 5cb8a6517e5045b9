// The quantized path's forward pass for a few tokens at a time (decode, batched decode, the
// sentinel steps): weights read in place through the kernel table, one persistent thread pool,
// buffers reused from step to step, and fused steps where they pay: RMSNorm then one activation
// quantization per input, Q/K/V (and gate/up) as one parallel product, SiLU on the gate/up rows,
// RoPE with the K/V write into the cache's own storage type. Not for training: no autograd.
#pragma once

#include <ATen/ATen.h>

#include <span>
#include <string>
#include <vector>

#include "sentinel/kernels/attention.h"
#include "sentinel/kernels/blocks.h"
#include "sentinel/model/decoder.h"
#include "sentinel/model/quantized_weights.h"

namespace sentinel {

// How a product's float input meets block-quantized weight rows (Q4_0 ... Q6_K; float rows
// always read float inputs): quantized per 32 values to 8 bits (llama.cpp's scheme) or to 16
// bits for the integer kernels, or kept float against rows dequantized on the fly.
enum class Activations : uint8_t { Q8, Q16, F32 };
// The decode path's choice for every matrix: Q16. It reads the same weight bytes as Q8 and brings
// the top token's agreement with the float32 path from 96.9% to 99.8% (docs/performance.md).
// SENTINEL_ACTIVATIONS=q8|q16|f32 overrides it for comparisons; a bad value throws naming them.
Activations decode_activations();
Activations parse_activations(const std::string& name);

// y [n, m.rows] = x [n, m.cols] W^T, reading the stored matrix in place through the integer
// kernels: the product for few rows of x.
void project_rows(const QuantizedMatrix& m, const float* x, int64_t n, float* y,
                  Activations activations = decode_activations());

// y = x W^T for x [..., cols] float32 on the CPU: up to kFewRows rows through project_rows, more
// through blocks of the matrix dequantized once and a float32 GEMM (prefill: the weights are
// then reused by every row, where integer dot products would not pay).
at::Tensor quantized_linear(const QuantizedMatrix& m, const at::Tensor& x);
inline constexpr int64_t kFewRows = 16;

class NativeDecoder {
 public:
  NativeDecoder(DecoderModelImpl& model, std::shared_ptr<const QuantizedWeights> weights);

  // One cached pass over every sequence's tokens (the flattened [N] tokens and positions, and
  // each sequence's rows, cache and mask as forward_cached validated them). Writes every layer's
  // new K/V after the sequence's cells and adds attention mass where asked. Returns [N, n_embd]
  // hidden states after the final norm.
  at::Tensor forward(const at::Tensor& tokens, const at::Tensor& positions, std::span<const CachedSequence> sequences);

  // hidden [rows, n_embd] -> logits [rows, n_vocab] f32 through the quantized LM head.
  at::Tensor logits(const at::Tensor& hidden);

  struct Target {  // one matrix of a fused product and where its outputs go
    const QuantizedMatrix* matrix;
    float* out;  // out[t * stride + r]
    int64_t stride;
    Activations activations = decode_activations();
  };
  struct QuantizedInputs {  // the caller's reusable buffers: [n, cols / 32] blocks
    std::vector<kernels::BlockQ8A> q8;
    std::vector<kernels::BlockQ16A> q16;
  };
  // x [n, cols] in float -> activations quantized once per scheme the targets' block rows need,
  // then every target's rows in one parallel region.
  static void run_targets(const float* x, int64_t n, int64_t cols, std::span<const Target> targets,
                          QuantizedInputs& inputs);

 private:
  void project(const QuantizedMatrix& m, const float* x, int64_t n, float* y,
               Activations activations = decode_activations());
  void add_lora(const ProjectionImpl& p, const float* x, int64_t n, float* y, int64_t y_stride);
  void add_bias(const ProjectionImpl& p, int64_t n, float* y);  // y [n, out] += bias, if p has one
  void norm_rows(const RmsNorm& norm, float* rows, int64_t n);   // rows [n, n_embd] normed in place
  void embed(const at::Tensor& tokens, float* out);

  DecoderModelImpl& model_;
  std::shared_ptr<const QuantizedWeights> weights_;
  const ModelConfig& config_;
  std::vector<float> inv_freq_;          // [head_dim / 2]
  std::vector<float> inv_freq_sliding_;  // [head_dim / 2] for sliding-window layers; empty without them
  // Buffers, grown on demand and reused: [N, ...] f32 unless noted.
  std::vector<float> x_, normed_, q_, k_, v_, attn_, gate_, up_, ff_, proj_, rope_, lora_;
  QuantizedInputs inputs_;
  std::vector<uint8_t> lora_rows_;  // [N] 1 where LoRA acts (LoraPositions)
  kernels::AttentionScratch attention_scratch_;
};

}  // namespace sentinel
