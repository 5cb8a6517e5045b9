// Adapter files (safetensors) and the base-model fingerprint that ties them to one model.
#include "sentinel/model/adapter.h"

#include <cstring>
#include <sstream>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/io/safetensors.h"
#include "sentinel/model/sentinels.h"

namespace sentinel {
namespace {

constexpr int64_t kFingerprintRows = 256;

std::string meta(const std::map<std::string, std::string>& metadata, const std::string& key) {
  auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

}  // namespace

std::string model_fingerprint(LlamaModel& model) {
  at::NoGradGuard no_grad;
  const LlamaConfig& c = model->config();
  std::ostringstream header;
  header << "llama n_vocab=" << c.n_vocab << " n_embd=" << c.n_embd << " n_layer=" << c.n_layer << " n_head=" << c.n_head
         << " n_head_kv=" << c.n_head_kv << " n_ff=" << c.n_ff << "\n";
  const at::Tensor weight = model->embed_tokens->weight;  // [n_vocab, n_embd]
  const int64_t step = std::max<int64_t>(1, c.n_vocab / kFingerprintRows);
  const at::Tensor sample =
      weight.slice(0, 0, c.n_vocab, step).to(at::kCPU).to(at::kBFloat16).contiguous();  // [~256, n_embd]
  std::string bytes = header.str();
  const size_t offset = bytes.size();
  bytes.resize(offset + sample.nbytes());
  std::memcpy(bytes.data() + offset, sample.data_ptr(), sample.nbytes());
  return sha256_bytes(bytes);
}

void save_adapter(const std::string& path, const Adapter& adapter, LlamaModel& base, const std::string& base_name) {
  const LlamaConfig& c = base->config();
  const at::Tensor rows = adapter.sentinel_embeddings.to(at::kCPU).to(at::kFloat).contiguous();
  check(rows.dim() == 2 && rows.size(0) == 2 && rows.size(1) == c.n_embd, "adapter sentinel embeddings must be [2, ",
        c.n_embd, "], got ", rows.sizes());
  SafetensorsWriter writer;
  writer.add(kSentinelEmbeddingsTensor, DType::F32, {2, c.n_embd},
             std::span<const uint8_t>(static_cast<const uint8_t*>(rows.data_ptr()), rows.nbytes()));
  for (const auto& [key, value] : adapter.metadata) writer.set_metadata(key, value);
  writer.set_metadata("format", kAdapterFormat);
  writer.set_metadata("format_version", "1");
  writer.set_metadata("base_model", base_name);
  writer.set_metadata("base_fingerprint", model_fingerprint(base));
  writer.set_metadata("n_vocab", std::to_string(c.n_vocab));
  writer.set_metadata("n_embd", std::to_string(c.n_embd));
  writer.write(path);
}

Adapter load_adapter(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  Adapter adapter;
  adapter.path = path;
  adapter.metadata = file.metadata();
  check(meta(adapter.metadata, "format") == kAdapterFormat, "adapter ", path,
        ": not a Sentinel adapter (safetensors metadata \"format\" is \"", meta(adapter.metadata, "format"),
        "\", expected \"", kAdapterFormat, "\"); pass a file written by `sentinel train`");
  check(meta(adapter.metadata, "format_version") == "1", "adapter ", path, ": format_version \"",
        meta(adapter.metadata, "format_version"), "\" is not supported by this build (supported: 1)");
  const SafetensorsTensor* rows = file.find(kSentinelEmbeddingsTensor);
  check(rows != nullptr, "adapter ", path, ": no tensor \"", kSentinelEmbeddingsTensor, "\"");
  check(rows->dtype == DType::F32 && rows->shape.size() == 2 && rows->shape[0] == 2, "adapter ", path, ": tensor \"",
        kSentinelEmbeddingsTensor, "\" must be F32 [2, n_embd], got ", dtype_name(rows->dtype), " with ",
        rows->shape.size(), " dims");
  at::Tensor t = at::empty({2, rows->shape[1]}, at::kFloat);
  std::memcpy(t.data_ptr(), rows->data.data(), rows->data.size());  // the mapping may be unaligned
  adapter.sentinel_embeddings = t;
  return adapter;
}

void apply_adapter(LlamaModel& base, const std::string& base_name, const Adapter& adapter) {
  const std::string trained_on = meta(adapter.metadata, "base_model");
  const std::string expected = meta(adapter.metadata, "base_fingerprint");
  const std::string actual = model_fingerprint(base);
  check(expected == actual, "adapter ", adapter.path, " was trained on \"", trained_on, "\" (fingerprint ",
        expected.substr(0, 12), "), not on this model \"", base_name, "\" (fingerprint ", actual.substr(0, 12),
        "); pass the --model it was trained on, or train an adapter for this one");
  check(adapter.sentinel_embeddings.size(1) == base->config().n_embd, "adapter ", adapter.path,
        ": sentinel embeddings have width ", adapter.sentinel_embeddings.size(1), ", the model's n_embd is ",
        base->config().n_embd);
  install_sentinels(base, adapter.sentinel_embeddings);
}

}  // namespace sentinel
