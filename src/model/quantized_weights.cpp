// QuantizedWeights: GGUF tensors located, typed and checked against the config once at load.
#include "sentinel/model/quantized_weights.h"

#include <ATen/Parallel.h>

#include <map>

#include "sentinel/core/error.h"
#include "sentinel/model/weights.h"

namespace sentinel {
namespace {

std::optional<kernels::RowType> row_type_of(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return kernels::RowType::F32;
    case GgmlType::F16: return kernels::RowType::F16;
    case GgmlType::BF16: return kernels::RowType::BF16;
    case GgmlType::Q4_0: return kernels::RowType::Q4_0;
    case GgmlType::Q4_1: return kernels::RowType::Q4_1;
    case GgmlType::Q8_0: return kernels::RowType::Q8_0;
    case GgmlType::Q5_0: return kernels::RowType::Q5_0;
    case GgmlType::Q5_1: return kernels::RowType::Q5_1;
    case GgmlType::Q4_K: return kernels::RowType::Q4_K;
    case GgmlType::Q5_K: return kernels::RowType::Q5_K;
    case GgmlType::Q6_K: return kernels::RowType::Q6_K;
    default: return std::nullopt;
  }
}

// Inverse of the converter's rotary permutation: HF row (h, half, i) is GGUF row (h, i, half).
std::vector<int32_t> rotary_row_order(int64_t n_head, int64_t head_dim) {
  std::vector<int32_t> order(static_cast<size_t>(n_head * head_dim));
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t which = 0; which < 2; ++which)
      for (int64_t i = 0; i < half; ++i)
        order[static_cast<size_t>(h * head_dim + which * half + i)] = static_cast<int32_t>(h * head_dim + 2 * i + which);
  return order;
}

QuantizedMatrix map_matrix(const GgufFile& file, const std::string& name, int64_t rows, int64_t cols) {
  const GgufTensorInfo& info = file.tensor(name);
  const auto type = row_type_of(info.type);
  check(type.has_value(), "tensor '", name, "' of ", file.path(), " is ", ggml_type_name(info.type),
        "; the quantized CPU path reads Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, F16, BF16 and F32 in place ",
        "(use --backend dense)");
  check(info.dims.size() == 2 && info.dims[0] == cols && info.dims[1] == rows, "tensor '", name, "' of ",
        file.path(), " does not have the shape [", rows, ", ", cols, "] the model config implies");
  check(cols % kernels::row_type_block(*type) == 0, "tensor '", name, "' has rows of ", cols, " values, not a multiple of ",
        kernels::row_type_name(*type), "'s ", kernels::row_type_block(*type), "-value block");
  QuantizedMatrix m;
  m.name = name;
  m.type = *type;
  m.data = info.data.data();
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = kernels::row_bytes(*type, cols);
  check(static_cast<int64_t>(info.data.size()) == rows * m.row_bytes, "tensor '", name, "' holds ", info.data.size(),
        " bytes, expected ", rows * m.row_bytes);
  return m;
}

}  // namespace

void QuantizedMatrix::dequantize_rows(int64_t begin, int64_t end, float* out) const {
  const kernels::KernelTable& k = kernels::kernels();
  // On libtorch's threads: this runs between the GEMMs of a prefill, which use them too.
  at::parallel_for(begin, end, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) k.row_to_f32(type, row(i), out + (i - begin) * cols, cols);
  });
}

at::Tensor QuantizedMatrix::dense() const {
  at::Tensor t = at::empty({rows, cols}, at::kFloat);
  dequantize_rows(0, rows, t.data_ptr<float>());
  return t;
}

std::optional<std::string> QuantizedWeights::unsupported_reason(const GgufFile& file, const ModelConfig& config) {
  try {
    from_gguf(file, config);
  } catch (const Error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

std::shared_ptr<QuantizedWeights> QuantizedWeights::from_gguf(const GgufFile& file, const ModelConfig& c) {
  auto w = std::make_shared<QuantizedWeights>();
  w->file_ = file;
  const int64_t q_dim = c.q_dim(), kv_dim = c.kv_dim();
  w->embed_ = map_matrix(file, "token_embd.weight", c.n_vocab, c.n_embd);
  if (!c.tied_embeddings) w->lm_head_ = map_matrix(file, "output.weight", c.n_vocab, c.n_embd);
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    QuantizedLayer layer;
    layer.q = map_matrix(file, p + "attn_q.weight", q_dim, c.n_embd);
    layer.k = map_matrix(file, p + "attn_k.weight", kv_dim, c.n_embd);
    layer.v = map_matrix(file, p + "attn_v.weight", kv_dim, c.n_embd);
    layer.o = map_matrix(file, p + "attn_output.weight", c.n_embd, q_dim);
    layer.gate = map_matrix(file, p + "ffn_gate.weight", c.n_ff, c.n_embd);
    layer.up = map_matrix(file, p + "ffn_up.weight", c.n_ff, c.n_embd);
    layer.down = map_matrix(file, p + "ffn_down.weight", c.n_embd, c.n_ff);
    if (gguf_permutes_rotary_rows(c.architecture)) {
      layer.q.row_order = rotary_row_order(c.n_head, c.head_dim);
      layer.k.row_order = rotary_row_order(c.n_head_kv, c.head_dim);
    }
    w->layers_.push_back(std::move(layer));
  }
  return w;
}

int64_t QuantizedWeights::bytes() const {
  int64_t total = embed_.bytes() + (lm_head_ ? lm_head_->bytes() : 0);
  for (const QuantizedLayer& l : layers_)
    total += l.q.bytes() + l.k.bytes() + l.v.bytes() + l.o.bytes() + l.gate.bytes() + l.up.bytes() + l.down.bytes();
  return total;
}

std::string QuantizedWeights::describe() const {
  std::map<std::string, int> counts;
  auto add = [&](const QuantizedMatrix& m) { counts[kernels::row_type_name(m.type)]++; };
  add(embed_);
  if (lm_head_) add(*lm_head_);
  for (const QuantizedLayer& l : layers_)
    for (const QuantizedMatrix* m : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) add(*m);
  std::string out;
  for (const auto& [type, n] : counts) out += (out.empty() ? "" : ", ") + type + " x" + std::to_string(n);
  return out;
}

}  // namespace sentinel
