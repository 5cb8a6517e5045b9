// _core.Model: loading (the CLI's open_model), the adapter variants compression asks for, the
// tokenizer and chat template, and scoring a text under compression (compressed_perplexity).
#include "bindings.h"
#include "sentinel/core/error.h"
#include "sentinel/eval/perplexity.h"
#include "sentinel/model/adapter.h"
#include "sentinel/tokenizer/chat_template.h"

namespace sentinel::python {

Model::Model(cli::ModelArgs args)
    : args_(std::move(args)), base_(std::make_unique<LoadedModel>(cli::open_model(args_, /*quiet=*/true))) {}

void Model::lock() {
  check(owner_.load() != std::this_thread::get_id(), "a policy's score() or observe() called the engine (a session, ",
        "score, generate) while it reads; a policy may only compute its scores");
  mutex_.lock();
  owner_ = std::this_thread::get_id();
}

void Model::unlock() {
  owner_ = std::thread::id();
  mutex_.unlock();
}

std::pair<LoadedModel*, PolicyOptions> Model::prepare(const Compression& compression) {
  PolicyOptions policy = compression.policy;
  // Which adapter: decided once per layout and request (it reads the shipped adapter to decide).
  const std::string key = span_layout_name(policy.layout) + "\n" + method_name(policy.method) + "\n" + compression.args.adapter;
  auto choice = adapter_choice_.find(key);
  if (choice == adapter_choice_.end())
    choice = adapter_choice_.emplace(key, adapter_for(policy, compression.args.adapter, base_->model)).first;
  const std::string& adapter = choice->second;
  LoadedModel* model = base_.get();
  if (!adapter.empty()) {
    auto variant = variants_.find(adapter);
    if (variant == variants_.end()) {
      // Kept only once the adapter is merged: a failed load leaves nothing behind under its name.
      auto loaded = std::make_unique<LoadedModel>(cli::open_model(args_, /*quiet=*/true));
      apply_adapter(loaded->model, loaded->name, load_adapter(adapter));
      variant = variants_.emplace(adapter, std::move(loaded)).first;
    }
    model = variant->second.get();
  }
  install_policy_tokens(policy, *model);
  return {model, policy};
}

at::Tensor cell_positions(std::span<const CacheCell> cells) {
  at::Tensor out = at::empty({static_cast<int64_t>(cells.size())}, at::kLong);
  int64_t* p = out.data_ptr<int64_t>();
  for (size_t i = 0; i < cells.size(); ++i) p[i] = cells[i].position;
  return out;
}

KvStorageScope::KvStorageScope(LoadedModel& loaded, const Compression& compression)
    : model_(loaded.model), saved_(loaded.model->kv_storage()) {
  if (compression.kv_dtype != "auto") model_->set_kv_storage(parse_kv_storage(compression.kv_dtype));
}

LoadedModel& Model::reference() {
  if (!reference_) {
    reference_ = std::make_unique<LoadedModel>(cli::open_model(cli::kl_reference_args(args_), /*quiet=*/true));
  }
  return *reference_;
}

namespace {

std::shared_ptr<Model> load(std::optional<std::string> path, const std::string& dtype, const std::string& backend,
                            const std::string& kv_dtype, int threads, std::optional<std::string> chat_template_file) {
  cli::ModelArgs args;
  args.model = path.value_or("");
  args.dtype = dtype == "f32" ? "float32" : dtype == "bf16" ? "bfloat16" : dtype;
  args.backend = backend;
  args.kv_dtype = kv_dtype;
  check(threads >= 0 && threads <= cli::kMaxThreads, "threads must be in [0, ", cli::kMaxThreads, "] (0 = all cores), got ",
        threads);
  args.threads = threads;
  args.chat_template_file = chat_template_file.value_or("");
  parse_dtype(args.dtype);  // names the accepted values before anything loads
  parse_backend(args.backend);
  if (args.kv_dtype != "auto") parse_kv_storage(args.kv_dtype);
  py::gil_scoped_release release;
  return std::make_shared<Model>(std::move(args));
}

py::dict score(Model& model, const py::handle& ids_arg, const Compression& compression, std::optional<int64_t> ctx,
               std::optional<int64_t> stride, std::optional<int64_t> chunk_arg, bool kl, const py::object& progress) {
  const std::vector<int32_t> ids = token_ids(ids_arg, "ids");
  const int64_t n = static_cast<int64_t>(ids.size());
  check(n >= 2, "scoring needs at least 2 tokens, got ", n);
  PerplexityOptions window;
  window.ctx = ctx.value_or(n);
  window.stride = stride.value_or(window.ctx);
  window.per_token = true;
  PerplexityResult r = without_gil(model, [&] {
    auto [loaded, policy] = model.prepare(compression);
    const KvStorageScope storage(*loaded, compression);
    check(ids.end() == std::find_if(ids.begin(), ids.end(), [&](int32_t id) { return id >= loaded->config.n_vocab; }),
          "ids hold a token id >= the vocabulary size ", loaded->config.n_vocab);
    DecoderModel* reference = kl ? &model.reference().model : nullptr;
    // Between windows: report progress and let Ctrl-C stop the run.
    ProgressCallback on_window = [&](int64_t done, int64_t total) {
      throw_if_interrupted();
      if (progress.is_none()) return;
      py::gil_scoped_acquire acquire;
      progress(done, total);
    };
    const int64_t chunk = chunk_arg.value_or(default_read_chunk(policy));  // as `sentinel ppl` without --chunk
    return compressed_perplexity(loaded->model, ids, window, policy, chunk, on_window, reference);
  });
  py::dict out;
  out["logprobs"] = r.token_logprob;
  out["greedy"] = r.token_greedy;
  out["kl"] = kl ? py::cast(r.token_kl) : py::none();
  out["ppl"] = r.ppl;
  out["nll"] = r.nll_sum;
  out["n_scored"] = r.n_scored;
  out["n_windows"] = r.n_windows;
  out["achieved_ratio"] = r.achieved_ratio();
  out["peak_kv_bytes"] = r.peak_kv_bytes;
  out["seconds"] = r.seconds - r.reference_seconds;
  if (kl) {
    out["reference_ppl"] = r.reference_ppl();
    out["mean_kl"] = r.mean_kl();
    out["top1_agreement"] = r.top1_agreement();
  }
  return out;
}

std::vector<ChatMessage> chat_messages(const py::list& messages) {
  std::vector<ChatMessage> out;
  for (const py::handle& m : messages) {
    if (!py::isinstance<py::dict>(m)) throw py::type_error("messages must be dicts like {'role': 'user', 'content': '...'}");
    const py::dict d = py::reinterpret_borrow<py::dict>(m);
    if (!d.contains("role") || !d.contains("content"))
      throw py::value_error("each message needs 'role' and 'content', got keys " + std::string(py::str(d.attr("keys")())));
    out.push_back({py::str(d["role"]), py::str(d["content"])});
  }
  return out;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<Model, std::shared_ptr<Model>>(m, "Model", "A loaded model (GGUF file or Hugging Face folder).")
      .def(py::init(&load), py::arg("path") = py::none(), py::kw_only(), py::arg("dtype") = "float32",
           py::arg("backend") = "auto", py::arg("kv_dtype") = "auto", py::arg("threads") = 0,
           py::arg("chat_template_file") = py::none())
      .def_property_readonly("name", [](Model& m) { return m.base().name; })
      .def_property_readonly("path", [](Model& m) { return m.base().path; })
      .def_property_readonly("n_vocab", [](Model& m) { return m.base().config.n_vocab; })
      .def_property_readonly("n_ctx", [](Model& m) { return m.base().config.n_ctx_train; })
      .def_property_readonly("n_layer", [](Model& m) { return m.base().config.n_layer; })
      .def_property_readonly("architecture", [](Model& m) { return architecture_name(m.base().config.architecture); })
      .def_property_readonly("tensor_types", [](Model& m) { return m.base().tensor_types; })
      .def_property_readonly("backend", [](Model& m) { return m.base().model->backend_description(); })
      .def_property_readonly("summary", [](Model& m) { return m.base().config.summary(); })
      // --- tokenizer ---
      .def("encode", [](Model& m, const std::string& text, bool add_bos, bool special) {
             return m.base().tokenizer->encode(text, add_bos, special ? SpecialTokens::Parse : SpecialTokens::Ignore);
           }, py::arg("text"), py::arg("add_bos") = true, py::arg("special") = true,
           py::call_guard<py::gil_scoped_release>())
      .def("decode", [](Model& m, const py::handle& ids, bool skip_special) {
             const std::vector<int32_t> v = token_ids(ids, "ids");
             return py::bytes(m.base().tokenizer->decode(v, skip_special));
           }, py::arg("ids"), py::arg("skip_special") = false)
      .def("token_text", [](Model& m, int32_t id) { return py::bytes(m.base().tokenizer->token_bytes(id)); }, py::arg("id"))
      .def_property_readonly("bos_id", [](Model& m) { return m.base().tokenizer->bos_id(); })
      .def_property_readonly("eos_id", [](Model& m) { return m.base().tokenizer->eos_id(); })
      .def_property_readonly("stop_ids", [](Model& m) { return m.base().tokenizer->stop_ids(); })
      .def_property_readonly("adds_bos", [](Model& m) { return m.base().tokenizer->add_bos(); })
      .def_property_readonly("chat_template", [](Model& m) { return m.base().tokenizer->chat_template(); })
      .def("apply_chat_template", [](Model& m, const py::list& messages, bool add_generation_prompt) {
             const std::vector<ChatMessage> chat = chat_messages(messages);
             py::gil_scoped_release release;
             const Tokenizer& tokenizer = *m.base().tokenizer;
             const std::string text = apply_chat_template(tokenizer, chat, add_generation_prompt);
             return std::make_pair(text, chat_prompt_needs_bos(tokenizer, text));
           }, py::arg("messages"), py::arg("add_generation_prompt") = true)
      // --- scoring ---
      .def("score", &score, py::arg("ids"), py::arg("compression"), py::arg("ctx") = py::none(),
           py::arg("stride") = py::none(), py::arg("chunk") = py::none(), py::arg("kl") = false,
           py::arg("progress") = py::none());
}

}  // namespace sentinel::python
