// Adapter files (safetensors) and the base-model fingerprint that ties them to one model.
#include "sentinel/model/adapter.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <sstream>
#include <vector>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"
#include "sentinel/io/safetensors.h"
#include "sentinel/model/lora.h"
#include "sentinel/model/sentinels.h"

namespace sentinel {
namespace {

constexpr int64_t kFingerprintRows = 256;

std::string meta(const std::map<std::string, std::string>& metadata, const std::string& key) {
  auto it = metadata.find(key);
  return it == metadata.end() ? std::string() : it->second;
}

}  // namespace

std::string model_fingerprint(DecoderModel& model) {
  at::NoGradGuard no_grad;
  const ModelConfig& c = model->config();
  std::ostringstream header;
  // "llama ..." for Llama models, as before other families existed, so shipped adapters still match.
  header << architecture_name(c.architecture) << " n_vocab=" << c.n_vocab << " n_embd=" << c.n_embd << " n_layer=" << c.n_layer << " n_head=" << c.n_head
         << " n_head_kv=" << c.n_head_kv << " n_ff=" << c.n_ff << "\n";
  const int64_t step = std::max<int64_t>(1, c.n_vocab / kFingerprintRows);
  // The same rows on the dense and the quantized path (they hold the same values).
  const at::Tensor sample = model->embedding_rows(0, c.n_vocab, step).to(at::kCPU).to(at::kBFloat16).contiguous();  // [~256, n_embd]
  std::string bytes = header.str();
  const size_t offset = bytes.size();
  bytes.resize(offset + sample.nbytes());
  std::memcpy(bytes.data() + offset, sample.data_ptr(), sample.nbytes());
  return sha256_bytes(bytes);
}

void save_adapter(const std::string& path, const Adapter& adapter, DecoderModel& base, const std::string& base_name) {
  const ModelConfig& c = base->config();
  SafetensorsWriter writer;
  auto add_f32 = [&](const std::string& name, const at::Tensor& tensor) {
    const at::Tensor t = tensor.detach().to(at::kCPU).to(at::kFloat).contiguous();
    writer.add(name, DType::F32, std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
               std::span<const uint8_t>(static_cast<const uint8_t*>(t.data_ptr()), t.nbytes()));
  };
  check(adapter.sentinel_embeddings.defined() || !adapter.lora.empty(),
        "an adapter needs sentinel embeddings or LoRA weights; this one has neither");
  if (adapter.sentinel_embeddings.defined()) {
    const at::Tensor& rows = adapter.sentinel_embeddings;
    check(rows.dim() == 2 && rows.size(0) == 2 && rows.size(1) == c.n_embd, "adapter sentinel embeddings must be [2, ",
          c.n_embd, "], got ", rows.sizes());
    add_f32(kSentinelEmbeddingsTensor, rows);
  }
  std::set<std::string> leaves;  // projection names adapted, listed in lora_target_names() order
  for (const auto& [name, tensor] : adapter.lora) {
    add_f32(name, tensor);
    const std::string module = name.substr(0, name.rfind(".lora_"));
    leaves.insert(module.substr(module.rfind('.') + 1));
  }
  std::string targets;
  for (const auto& leaf : lora_target_names())
    if (leaves.count(leaf)) targets += (targets.empty() ? "" : ",") + leaf;
  for (const auto& [key, value] : adapter.metadata) writer.set_metadata(key, value);
  writer.set_metadata("format", kAdapterFormat);
  writer.set_metadata("format_version", adapter.lora.empty() ? "1" : "2");
  if (!adapter.lora.empty()) {
    check(adapter.lora_rank >= 1 && adapter.lora_alpha > 0, "adapter LoRA needs lora_rank >= 1 and lora_alpha > 0, got ",
          adapter.lora_rank, " and ", adapter.lora_alpha);
    writer.set_metadata("lora_rank", std::to_string(adapter.lora_rank));
    std::ostringstream alpha;
    alpha.precision(17);
    alpha << adapter.lora_alpha;
    writer.set_metadata("lora_alpha", alpha.str());
    writer.set_metadata("lora_target_modules", targets);
    writer.set_metadata("lora_positions", lora_positions_name(adapter.lora_positions));
  }
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
  if (meta(adapter.metadata, "format") == kFullWeightsFormat) {
    for (const auto& t : file.tensors()) {
      check(t.dtype == DType::F32, "full weights ", path, ": tensor \"", t.name, "\" is ", dtype_name(t.dtype),
            ", expected F32 (as `sentinel train --full` writes)");
      at::Tensor out = at::empty(std::vector<int64_t>(t.shape.begin(), t.shape.end()), at::kFloat);
      std::memcpy(out.data_ptr(), t.data.data(), t.data.size());
      if (t.name == kSentinelEmbeddingsTensor) {
        adapter.sentinel_embeddings = out;
      } else {
        adapter.full_weights[t.name] = out;
      }
    }
    return adapter;
  }
  check(meta(adapter.metadata, "format") == kAdapterFormat, "adapter ", path,
        ": not a Sentinel adapter (safetensors metadata \"format\" is \"", meta(adapter.metadata, "format"),
        "\", expected \"", kAdapterFormat, "\"); pass a file written by `sentinel train`");
  const std::string version = meta(adapter.metadata, "format_version");
  check(version == "1" || version == "2", "adapter ", path, ": format_version \"", version,
        "\" is not supported by this build (supported: 1, 2)");
  auto to_tensor = [&](const SafetensorsTensor& t) {
    check(t.dtype == DType::F32 && t.shape.size() == 2, "adapter ", path, ": tensor \"", t.name,
          "\" must be F32 with 2 dims, got ", dtype_name(t.dtype), " with ", t.shape.size(), " dims");
    at::Tensor out = at::empty({t.shape[0], t.shape[1]}, at::kFloat);
    std::memcpy(out.data_ptr(), t.data.data(), t.data.size());  // the mapping may be unaligned
    return out;
  };
  const SafetensorsTensor* rows = file.find(kSentinelEmbeddingsTensor);
  check(rows != nullptr || version == "2", "adapter ", path, ": no tensor \"", kSentinelEmbeddingsTensor, "\"");
  if (rows != nullptr) {
    adapter.sentinel_embeddings = to_tensor(*rows);
    check(adapter.sentinel_embeddings.size(0) == 2, "adapter ", path, ": tensor \"", kSentinelEmbeddingsTensor,
          "\" must be [2, n_embd], got ", adapter.sentinel_embeddings.sizes());
  }
  for (const auto& t : file.tensors())
    if (t.name != kSentinelEmbeddingsTensor) adapter.lora[t.name] = to_tensor(t);
  if (!adapter.lora.empty()) {
    try {
      adapter.lora_rank = std::stoll(meta(adapter.metadata, "lora_rank"));
      adapter.lora_alpha = std::stod(meta(adapter.metadata, "lora_alpha"));
    } catch (const std::exception&) {
      fail("adapter ", path, ": LoRA tensors without valid lora_rank / lora_alpha metadata (got \"",
           meta(adapter.metadata, "lora_rank"), "\" and \"", meta(adapter.metadata, "lora_alpha"),
           "\"); re-save it with `sentinel train`");
    }
    if (adapter.metadata.count("lora_positions")) {
      try {
        adapter.lora_positions = parse_lora_positions(adapter.metadata.at("lora_positions"));
      } catch (const Error& e) {
        fail("adapter ", path, ": metadata lora_positions: ", e.what());
      }
    }
    check(adapter.lora_rank >= 1 && adapter.lora_alpha > 0, "adapter ", path, ": metadata lora_rank ",
          adapter.lora_rank, " and lora_alpha ", adapter.lora_alpha, " must be positive");
    std::set<std::string> leaves;  // the modules the tensors adapt: q_proj, ...
    for (const auto& [name, tensor] : adapter.lora) {
      const bool is_a = name.ends_with(".lora_A.weight");
      check(is_a || name.ends_with(".lora_B.weight"), "adapter ", path, ": unexpected tensor \"", name, "\"");
      check(tensor.size(is_a ? 0 : 1) == adapter.lora_rank, "adapter ", path, ": tensor \"", name, "\" ",
            tensor.sizes(), " does not have rank ", adapter.lora_rank, " (metadata lora_rank)");
      const std::string module = name.substr(0, name.size() - std::string(".lora_A.weight").size());
      check(adapter.lora.count(module + (is_a ? ".lora_B.weight" : ".lora_A.weight")) == 1, "adapter ", path,
            ": tensor \"", name, "\" has no ", is_a ? "lora_B" : "lora_A", " partner");
      leaves.insert(module.substr(module.rfind('.') + 1));
    }
    // The metadata says what the file holds; a file whose tensors say otherwise was altered.
    if (adapter.metadata.count("lora_target_modules")) {
      std::string listed;
      for (const auto& leaf : lora_target_names())
        if (leaves.count(leaf)) listed += (listed.empty() ? "" : ",") + leaf;
      check(listed == adapter.metadata.at("lora_target_modules"), "adapter ", path,
            ": metadata lora_target_modules \"", adapter.metadata.at("lora_target_modules"),
            "\" disagrees with its tensors, which adapt \"", listed, "\"; re-save it with `sentinel train`");
    }
  }
  if (adapter.sentinel_embeddings.defined() && adapter.metadata.count("n_embd"))
    check(std::to_string(adapter.sentinel_embeddings.size(1)) == adapter.metadata.at("n_embd"), "adapter ", path,
          ": metadata n_embd ", adapter.metadata.at("n_embd"), " disagrees with its sentinel rows of ",
          adapter.sentinel_embeddings.size(1), " values");
  return adapter;
}

bool adapter_belongs_to(const Adapter& adapter, DecoderModel& base) {
  const auto it = adapter.metadata.find("base_fingerprint");
  return it != adapter.metadata.end() && it->second == model_fingerprint(base);
}

const char* bundled_sentinel_adapter(SpanLayout layout) {
  return layout == SpanLayout::Heavy ? kBundledHeavyAdapter : kBundledSentinelAdapter;
}

std::string bundled_sentinel_adapter_path(SpanLayout layout) {
  const char* dir = std::getenv("SENTINEL_ADAPTER_DIR");
  const std::string folder = dir != nullptr && *dir != '\0' ? dir : SENTINEL_ADAPTER_DIR;
  const std::string path = folder + "/" + bundled_sentinel_adapter(layout);
  return std::filesystem::exists(path) ? path : "";
}

namespace {

// A --full fine-tune: every weight it holds replaces the base model's, by Hugging Face name.
void replace_weights(DecoderModel& base, const Adapter& adapter) {
  check(!base->is_quantized(), "full weights ", adapter.path, " replace every matrix, but this model reads its GGUF ",
        "weights quantized in place; pass --backend dense");
  at::NoGradGuard no_grad;
  size_t n_replaced = 0;
  for (auto& item : base->named_parameters(/*recurse=*/true)) {
    if (item.key() == kSentinelEmbeddingsTensor) continue;  // installed with the rows below
    const auto it = adapter.full_weights.find(DecoderModelImpl::hf_name(item.key()));
    check(it != adapter.full_weights.end(), "full weights ", adapter.path, " lack \"",
          DecoderModelImpl::hf_name(item.key()), "\"; they were written for another architecture");
    check(it->second.sizes() == item.value().sizes(), "full weights ", adapter.path, ": \"", it->first, "\" is ",
          it->second.sizes(), ", the model's is ", item.value().sizes());
    item.value().copy_(it->second);
    ++n_replaced;
  }
  check(n_replaced == adapter.full_weights.size(), "full weights ", adapter.path, " hold ", adapter.full_weights.size(),
        " tensors, this model has ", n_replaced, "; they were written for another architecture");
}

}  // namespace

void apply_adapter(DecoderModel& base, const std::string& base_name, const Adapter& adapter) {
  const std::string trained_on = meta(adapter.metadata, "base_model");
  const std::string expected = meta(adapter.metadata, "base_fingerprint");
  const std::string actual = model_fingerprint(base);
  check(expected == actual, "adapter ", adapter.path, " was trained on \"", trained_on, "\" (fingerprint ",
        expected.substr(0, 12), "), not on this model \"", base_name, "\" (fingerprint ", actual.substr(0, 12),
        "); pass the --model it was trained on, or train an adapter for this one");
  if (!adapter.lora.empty()) merge_lora(base, adapter.lora, adapter.lora_alpha, adapter.lora_positions);
  if (!adapter.full_weights.empty()) replace_weights(base, adapter);
  if (!adapter.sentinel_embeddings.defined()) return;
  check(adapter.sentinel_embeddings.size(1) == base->config().n_embd, "adapter ", adapter.path,
        ": sentinel embeddings have width ", adapter.sentinel_embeddings.size(1), ", the model's n_embd is ",
        base->config().n_embd);
  install_sentinels(base, adapter.sentinel_embeddings);
}

}  // namespace sentinel
