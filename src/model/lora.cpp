// LoRA attachment, peft naming, merging and the trainable-parameter selection.
#include "sentinel/model/lora.h"

#include <algorithm>
#include <sstream>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

constexpr const char* kPeftPrefix = "base_model.model.";

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool ends_with_target(const std::string& module_name, const std::vector<std::string>& targets) {
  const auto dot = module_name.rfind('.');
  const std::string leaf = dot == std::string::npos ? module_name : module_name.substr(dot + 1);
  return std::find(targets.begin(), targets.end(), leaf) != targets.end();
}

// Projections of the decoder layers by module name ("layers.0.self_attn.q_proj").
std::map<std::string, ProjectionImpl*> layer_projections(DecoderModel& model) {
  std::map<std::string, ProjectionImpl*> out;
  for (auto& item : model->named_modules("", /*include_self=*/false)) {
    if (item.key().rfind("layers.", 0) != 0) continue;
    if (auto* p = item.value()->as<ProjectionImpl>()) out[item.key()] = p;
  }
  return out;
}

// "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" -> {"layers.0.self_attn.q_proj", "lora_A"}
std::pair<std::string, std::string> split_peft_name(const std::string& name) {
  const std::string head = std::string(kPeftPrefix) + "model.";
  const std::string tail = ".weight";
  check(name.rfind(head, 0) == 0 && name.size() > head.size() + tail.size() &&
            name.compare(name.size() - tail.size(), tail.size(), tail) == 0,
        "LoRA tensor '", name, "' is not named as peft names it (base_model.model.model.layers.N.<module>.lora_A.weight)");
  const std::string middle = name.substr(head.size(), name.size() - head.size() - tail.size());
  const auto dot = middle.rfind('.');
  const std::string which = middle.substr(dot + 1);
  check(which == "lora_A" || which == "lora_B", "LoRA tensor '", name, "' is neither lora_A nor lora_B");
  return {middle.substr(0, dot), which};
}

}  // namespace

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names = {"q_proj",    "k_proj", "v_proj",   "o_proj",
                                                 "gate_proj", "up_proj", "down_proj"};
  return names;
}

void LoraOptions::validate() const {
  check(rank >= 1, "--lora-rank must be >= 1, got ", rank);
  check(alpha > 0, "--lora-alpha must be > 0, got ", alpha);
  check(dropout >= 0.0 && dropout < 1.0, "--lora-dropout must be in [0, 1), got ", dropout);
  check(!targets.empty(), "--lora-targets is empty; name some of: ", joined(lora_target_names()));
  for (const auto& t : targets)
    check(std::find(lora_target_names().begin(), lora_target_names().end(), t) != lora_target_names().end(),
          "unknown LoRA target module '", t, "'; use some of: ", joined(lora_target_names()));
}

std::vector<std::string> parse_lora_targets(const std::string& comma_list) {
  std::vector<std::string> out;
  std::stringstream in(comma_list);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) out.push_back(item);
  LoraOptions probe;
  probe.targets = out;
  probe.validate();
  return out;
}

void add_lora(DecoderModel& model, const LoraOptions& options) {
  options.validate();
  for (auto& [name, projection] : layer_projections(model))
    if (ends_with_target(name, options.targets)) projection->add_lora(options.rank, options.alpha, options.dropout);
  model->set_lora_positions(options.positions);
}

std::string peft_name(const std::string& parameter_name) {
  return kPeftPrefix + DecoderModelImpl::hf_name(parameter_name) + ".weight";
}

std::map<std::string, at::Tensor> lora_tensors(DecoderModel& model) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, projection] : layer_projections(model)) {
    if (!projection->has_lora()) continue;
    out[peft_name(name + ".lora_A")] = projection->lora_A;
    out[peft_name(name + ".lora_B")] = projection->lora_B;
  }
  return out;
}

LoraDisabled::LoraDisabled(DecoderModel& model) {
  for (auto& [name, projection] : layer_projections(model)) {
    saved_.emplace_back(projection, projection->lora_enabled);
    projection->lora_enabled = false;
  }
}

LoraDisabled::~LoraDisabled() {
  for (auto& [projection, enabled] : saved_) projection->lora_enabled = enabled;
}

void load_lora(DecoderModel& model, const std::map<std::string, at::Tensor>& tensors) {
  at::NoGradGuard no_grad;
  const auto attached = lora_tensors(model);
  for (const auto& [name, tensor] : tensors)
    check(attached.count(name) > 0, "LoRA tensor '", name, "' has no attached LoRA in this model (check --lora-targets)");
  for (const auto& [name, param] : attached) {
    auto it = tensors.find(name);
    check(it != tensors.end(), "LoRA tensor '", name, "' is missing");
    check(it->second.sizes() == param.sizes(), "LoRA tensor '", name, "' has shape ", it->second.sizes(),
          ", the model expects ", param.sizes(), " (another --lora-rank?)");
    param.copy_(it->second);
  }
}

void merge_lora(DecoderModel& model, const std::map<std::string, at::Tensor>& tensors, double alpha,
                LoraPositions positions) {
  at::NoGradGuard no_grad;
  auto projections = layer_projections(model);
  std::map<std::string, std::pair<at::Tensor, at::Tensor>> pairs;  // module -> (A, B)
  for (const auto& [name, tensor] : tensors) {
    const auto [module, which] = split_peft_name(name);
    check(projections.count(module) > 0, "LoRA tensor '", name, "' names no projection of this model");
    (which == "lora_A" ? pairs[module].first : pairs[module].second) = tensor;
  }
  for (const auto& [module, ab] : pairs) {
    const auto& [a, b] = ab;
    check(a.defined() && b.defined(), "LoRA for '", module, "' lacks ", a.defined() ? "lora_B" : "lora_A");
    ProjectionImpl& p = *projections.at(module);
    check(a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(1) && a.size(1) == p.in_features() &&
              b.size(0) == p.out_features(),
          "LoRA for '", module, "': A ", a.sizes(), " and B ", b.sizes(), " do not fit the weight [", p.out_features(),
          ", ", p.in_features(), "]");
    if (model->is_quantized() || positions == LoraPositions::Sentinels) {
      // The stored matrix stays as it is: the low-rank term runs beside it, unmerged.
      p.add_lora(a.size(0), alpha, 0.0);
      p.lora_A.copy_(a.to(at::kFloat));
      p.lora_B.copy_(b.to(at::kFloat));
      continue;
    }
    at::Tensor& w = p.weight;  // [out, in]
    const double scaling = alpha / static_cast<double>(a.size(0));
    const at::Tensor delta = at::matmul(b.to(at::kFloat), a.to(at::kFloat)) * scaling;  // [out, in]
    w.copy_((w.to(at::kFloat) + delta.to(w.device())).to(w.scalar_type()));
  }
  model->set_lora_positions(positions);
}

std::vector<std::pair<std::string, at::Tensor>> set_trainable(DecoderModel& model, TrainScope scope) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& item : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    const bool is_lora = name.ends_with(".lora_A") || name.ends_with(".lora_B");
    const bool train = scope == TrainScope::Full || is_lora || name == "sentinel_embeddings";
    item.value().set_requires_grad(train);
    if (train) out.emplace_back(name, item.value());
  }
  return out;
}

}  // namespace sentinel
