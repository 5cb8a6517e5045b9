// The weights of the quantized CPU path: every matrix of a GGUF file used in place, inside its
// memory mapping (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and the K-quants Q4_K, Q5_K, Q6_K; F32, F16, BF16
// rows), with no dequantization at load, so resident weights are about the file's size. Knows where each matrix's rows are and how to
// read them; the forward pass that uses them is native_decoder.h.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/io/gguf.h"
#include "sentinel/kernels/kernels.h"
#include "sentinel/model/config.h"

namespace sentinel {

// A [rows, cols] matrix stored row by row in a ggml type. Row i of the matrix as Hugging Face
// orders it is stored row row_order[i] (llama.cpp's converter permutes Q/K rows per head for its
// rotary layout; mapping indices here spares a copy), or row i when row_order is empty.
struct QuantizedMatrix {
  std::string name;               // GGUF tensor name
  kernels::RowType type = kernels::RowType::F32;
  const uint8_t* data = nullptr;  // rows * row_bytes bytes inside the mapping
  int64_t rows = 0, cols = 0, row_bytes = 0;
  std::vector<int32_t> row_order;

  const uint8_t* row(int64_t i) const {
    return data + (row_order.empty() ? i : row_order[static_cast<size_t>(i)]) * row_bytes;
  }
  // Rows [begin, end) in Hugging Face order as float32: out [end - begin, cols].
  void dequantize_rows(int64_t begin, int64_t end, float* out) const;
  at::Tensor dense() const;  // [rows, cols] f32, a copy
  int64_t bytes() const { return rows * row_bytes; }
};

struct QuantizedLayer {
  QuantizedMatrix q, k, v, o, gate, up, down;
};

class QuantizedWeights {
 public:
  // Maps the matrices of a llama GGUF. Throws Error naming the first tensor whose type this path
  // cannot read in place (a K-quant, say): then the dense float32 path is the one to use.
  static std::shared_ptr<QuantizedWeights> from_gguf(const GgufFile& file, const ModelConfig& config);
  // Why `file` cannot use the quantized path, or nullopt when it can.
  static std::optional<std::string> unsupported_reason(const GgufFile& file, const ModelConfig& config);

  const QuantizedMatrix& embed() const { return embed_; }  // [n_vocab, n_embd]: input rows and the tied head
  const QuantizedMatrix& lm_head() const { return lm_head_ ? *lm_head_ : embed_; }
  const QuantizedLayer& layer(int64_t i) const { return layers_.at(static_cast<size_t>(i)); }
  int64_t n_layer() const { return static_cast<int64_t>(layers_.size()); }
  int64_t bytes() const;             // bytes of every matrix, as mapped
  std::string describe() const;      // "q4_1 x210, q8_0 x1"

 private:
  GgufFile file_;  // keeps the mapping alive
  QuantizedMatrix embed_;
  std::optional<QuantizedMatrix> lm_head_;
  std::vector<QuantizedLayer> layers_;
};

}  // namespace sentinel
