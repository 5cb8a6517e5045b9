// _core.Session and _core.TokenStream: one sequence read incrementally under a compression
// (engine/session.h), generation from it (one Driver over engine/generator.h's Generation for both
// generate() and stream()), its state saved, loaded and forked through the CLI's and the server's
// state files, and batched generation over several sequences in lock-step (append_batch).
#include "bindings.h"
#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "sentinel/server/session_capture.h"
#include "sentinel/server/session_state.h"
#include "sentinel/server/state_file.h"

namespace sentinel::python {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The first cache allocation of a session; it grows by doubling only as far as the policy lets it.
constexpr int64_t kInitialCells = 256;
constexpr int64_t kPrefillChunk = 512;

Logits parse_logits(const std::string& which) {
  if (which == "last") return Logits::Last;
  if (which == "all") return Logits::All;
  if (which == "none") return Logits::None;
  fail("logits must be 'last', 'all' or 'none', got '", which, "'");
}

// The generation keywords every generating call takes, in the engine's form (validated).
struct GenerationArgs {
  int64_t max_tokens = 128;
  double temperature = 0.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  double repetition_penalty = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool logprobs = false;

  GenerationOptions options(uint64_t seed_offset = 0) const {
    GenerationOptions o;
    o.max_tokens = max_tokens;
    o.sampling = SamplingOptions{temperature, top_k, top_p, repetition_penalty, seed + seed_offset};
    o.stop_strings = stop;
    o.stop_at_eos = !ignore_eos;
    o.logprobs = logprobs;
    o.validate();
    return o;
  }
};

py::dict result_dict(const GenerationResult& r, bool logprobs) {
  py::dict out;
  out["text"] = py::bytes(r.text);  // decoded to str (with replacement) by the Python layer
  out["tokens"] = r.tokens;
  out["logprobs"] = logprobs ? py::cast(at::tensor(r.logprobs, at::kFloat)) : py::object(py::none());
  out["stop_reason"] = stop_reason_name(r.stop_reason);
  out["n_prompt"] = r.n_prompt;
  out["prefill_seconds"] = r.prefill_seconds;
  out["decode_steps"] = r.decode_steps;
  out["decode_seconds"] = r.decode_seconds;
  return out;
}

class PySession {
 public:
  PySession(std::shared_ptr<Model> model, Compression compression)
      : model_(std::move(model)), compression_(std::move(compression)) {
    without_gil(*model_, [&] {
      std::tie(loaded_, policy_) = model_->prepare(compression_);
      const KvStorageScope storage(*loaded_, compression_);
      session_ = std::make_unique<Session>(loaded_->model, loaded_->model->cache_options(kInitialCells), policy_);
    });
  }

  // The engine's session; every call below runs with the GIL released and the model locked.
  Session& live() {
    check(session_ != nullptr, broken_ ? "this session was closed by an error in the middle of a forward pass (the "
                                         "exception raised then); open a new one with model.session()"
                                       : "this session is closed; open a new one with model.session()");
    return *session_;
  }
  Model& model() { return *model_; }
  LoadedModel& loaded() { return *loaded_; }
  const Compression& compression() const { return compression_; }

  void check_ids(const std::vector<int32_t>& ids) const {
    const int64_t n_vocab = loaded_->config.n_vocab;
    for (size_t i = 0; i < ids.size(); ++i)
      check(ids[i] < n_vocab, "token id ", ids[i], " (at ", i, ") is not in the vocabulary of ", n_vocab, " tokens");
  }

  // Feeds tokens in prefill chunks, Ctrl-C checked between chunks (where the session is whole), and
  // records them. A failure inside a pass (a Python policy that raised) leaves the cache and the
  // policy half-updated: the session is closed rather than left to compute nonsense.
  at::Tensor feed(std::span<const int32_t> ids, Logits which) {
    Session& s = live();
    std::vector<at::Tensor> all;
    at::Tensor last;
    for (size_t begin = 0; begin < ids.size(); begin += kPrefillChunk) {
      if (begin > 0) throw_if_interrupted();
      const auto piece = ids.subspan(begin, std::min<size_t>(kPrefillChunk, ids.size() - begin));
      at::Tensor logits;
      try {
        logits = s.append(piece, which, kPrefillChunk);
      } catch (...) {
        session_.reset();
        broken_ = true;
        throw;
      }
      tokens_.insert(tokens_.end(), piece.begin(), piece.end());
      if (which == Logits::All) all.push_back(logits);
      if (which != Logits::None) last = which == Logits::All ? logits[logits.size(0) - 1] : logits;
    }
    // The last row as its own tensor: a view would keep a whole chunk's [T, n_vocab] alive.
    logits_ = which == Logits::None ? at::Tensor() : which == Logits::All ? last.clone() : last;
    if (which == Logits::All) return all.size() == 1 ? all[0] : at::cat(all);
    return last;
  }

  py::object append(const py::handle& ids_arg, const std::string& which_name) {
    const std::vector<int32_t> ids = token_ids(ids_arg, "ids");
    const Logits which = parse_logits(which_name);
    check(!ids.empty(), "append needs at least one token id");
    check_ids(ids);
    at::Tensor logits = without_gil(*model_, [&] {
      c10::InferenceMode inference;
      return feed(ids, which);
    });
    return which == Logits::None ? py::object(py::none()) : py::cast(logits);
  }

  int64_t save(const std::string& path) {
    return without_gil(*model_, [&] {
      check(server::resumable(policy_), "a ", describe(policy_), " session cannot be saved: its plan depends on ",
            "attention scores that a state file does not hold (h2o, tova, sentinel's default heavy layout, custom ",
            "policies); read with layout=\"stream\" (or strided, streaming, sepllm) to save");
      return server::save_state_file(path, capture(), state_info());
    });
  }

  // The session's state with the compression it was read under.
  server::SessionState capture() {
    server::SessionState state = server::capture_state(live(), tokens_);
    state.policy = policy_;
    return state;
  }

  server::StateFileInfo state_info() { return {model_fingerprint(loaded_->model), loaded_->name}; }

  // Continues from `state` (read from a file or captured from another session). GIL released.
  void restore(const server::SessionState& state) {
    check(describe(state.policy) == describe(policy_) && state.policy.spans.empty() == policy_.spans.empty(),
          "the saved state was compressed with ", describe(state.policy), ", this session asks for ", describe(policy_),
          "; use the same compression options");
    server::restore_state(live(), state);
    tokens_ = state.tokens;
  }

  std::shared_ptr<PySession> fork() {
    without_gil(*model_, [&] {
      live();
      check(server::resumable(policy_), "a ", describe(policy_), " session cannot be forked: its plan depends on ",
            "attention scores the copy could not continue (h2o, tova, sentinel's default heavy layout, custom ",
            "policies); read with layout=\"stream\" (or strided, streaming, sepllm) to fork");
    });
    auto copy = std::make_shared<PySession>(model_, compression_);
    without_gil(*model_, [&] {
      copy->restore(capture());
      copy->logits_ = logits_;
    });
    return copy;
  }

  void close() {
    without_gil(*model_, [&] { session_.reset(); });
  }
  bool closed() const { return session_ == nullptr; }

  // Readers take the lock too: another thread may be appending.
  py::object logits() {
    const at::Tensor l = without_gil(*model_, [&] { return logits_; });
    return l.defined() ? py::cast(l) : py::object(py::none());
  }
  std::vector<int32_t> tokens() {
    return without_gil(*model_, [&] { return tokens_; });
  }
  int64_t n_tokens() {
    return without_gil(*model_, [&] { return static_cast<int64_t>(tokens_.size()); });
  }
  at::Tensor positions() {
    return without_gil(*model_, [&] { return cell_positions(live().cache().cells()); });
  }
  py::dict stats() {
    struct Numbers {
      CompressionStats stats;
      int64_t entries, kv_bytes, uncompressed;
    };
    const Numbers n = without_gil(*model_, [&] {
      Session& s = live();
      return Numbers{s.stats(), s.cache().size(), s.cache().bytes_in_use(),
                     s.cache().bytes_uncompressed(s.stats().ordinary_seen)};
    });
    py::dict out;
    out["tokens_read"] = n.stats.ordinary_seen;
    out["sentinels_fed"] = n.stats.sentinels_fed;
    out["entries"] = n.entries;
    out["entries_evicted"] = n.stats.cells_evicted;
    out["kv_bytes"] = n.kv_bytes;
    out["kv_bytes_uncompressed"] = n.uncompressed;
    out["peak_kv_bytes"] = n.stats.peak_bytes;
    out["achieved_ratio"] = n.stats.achieved_ratio();
    return out;
  }

 private:
  std::shared_ptr<Model> model_;
  Compression compression_;  // keeps a Python policy alive as long as the session
  LoadedModel* loaded_ = nullptr;
  PolicyOptions policy_;
  std::unique_ptr<Session> session_;
  bool broken_ = false;          // closed by an error inside a pass
  std::vector<int32_t> tokens_;  // ordinary tokens fed, for state files and forks
  at::Tensor logits_;            // [n_vocab] what the last fed token predicts; undefined after logits="none"
};

// One generation from a session, step by step: stream() returns each step's text, generate() runs
// the steps to the end. A step feeds the token the previous step sampled (the prompt, at the
// first), then samples the next, so a stream left early leaves no work behind.
class Driver {
 public:
  Driver(std::shared_ptr<PySession> session, std::vector<int32_t> prompt, const GenerationOptions& options)
      : session_(std::move(session)), prompt_(std::move(prompt)), logprobs_(options.logprobs) {
    session_->check_ids(prompt_);
    generation_ = std::make_unique<Generation>(*session_->loaded().tokenizer, prompt_, options);
  }

  // One step; the model must be locked. Returns the text that became final (often empty).
  std::string step() {
    const auto start = Clock::now();
    bool prefilling = false;
    if (!prefilled_) {
      prefilled_ = prefilling = true;
      logits_ = session_->feed(prompt_, Logits::Last);
      generation_->result().prefill_seconds = seconds_since(start);
    } else if (to_feed_) {
      const int32_t one[] = {*std::exchange(to_feed_, std::nullopt)};
      logits_ = session_->feed(one, Logits::Last);
      ++generation_->result().decode_steps;
    }
    const auto sampling = Clock::now();
    if (!generation_->done()) to_feed_ = generation_->next_token(logits_);
    // Decoding: every step after the prompt's, sampling included (as generate() in the CLI counts it).
    generation_->result().decode_seconds += seconds_since(prefilling ? sampling : start);
    return generation_->take_text();
  }

  // The text of the next steps up to the first that gives some, "" at the end (model locked).
  // Any failure ends the generation: a half-fed step is not retried.
  std::string next_text() {
    try {
      std::string text;
      while (text.empty() && !generation_->done()) text = step();
      return text;
    } catch (...) {
      generation_->cancel();
      throw;
    }
  }

  bool done() const { return generation_->done(); }
  void cancel() {
    if (!generation_->done()) generation_->cancel();
  }
  py::dict result() const { return result_dict(generation_->result(), logprobs_); }
  Model& model() { return session_->model(); }

 private:
  std::shared_ptr<PySession> session_;
  std::vector<int32_t> prompt_;
  bool logprobs_;
  std::unique_ptr<Generation> generation_;
  at::Tensor logits_;
  bool prefilled_ = false;
  std::optional<int32_t> to_feed_;
};

// generate(): the driver run to the end, Ctrl-C checked after every step.
py::dict generate_to_end(Driver& driver) {
  bool interrupted_by_signal = false;
  without_gil(driver.model(), [&] {
    c10::InferenceMode inference;
    while (!driver.done()) {
      driver.next_text();
      if (interrupted()) {
        interrupted_by_signal = true;
        driver.cancel();
      }
    }
  });
  if (interrupted_by_signal) raise_pending();
  return driver.result();
}

// Python's iterator over a Driver.
class TokenStream {
 public:
  explicit TokenStream(std::unique_ptr<Driver> driver) : driver_(std::move(driver)) {}
  std::string next() {
    std::string text = without_gil(driver_->model(), [&] {
      c10::InferenceMode inference;
      return driver_->next_text();
    });
    if (text.empty()) throw py::stop_iteration();
    return text;
  }
  void close() { driver_->cancel(); }
  py::dict result() const { return driver_->result(); }

 private:
  std::unique_ptr<Driver> driver_;
};

std::shared_ptr<PySession> load_session(std::shared_ptr<Model> model, const std::string& path,
                                        std::optional<Compression> compression) {
  const server::SessionState state = without_gil(*model, [&] {
    return server::load_state_file(path, {model_fingerprint(model->base().model), model->base().name});
  });
  if (!compression) {
    // The compression and KV storage the file was saved with; the adapter that compression reads
    // with by default (a state file does not name its adapter).
    Compression c;
    c.args.method = method_name(state.policy.method);
    c.args.layout = span_layout_name(state.policy.layout);
    c.args.stride_share = state.policy.stride_share;
    c.args.older_rank = older_rank_name(state.policy.older_rank);
    c.args.policy = state.policy;
    c.policy = state.policy;
    c.kv_dtype = kernels::row_type_name(state.row_type);
    compression = c;
  }
  auto session = std::make_shared<PySession>(model, *compression);
  without_gil(*model, [&] { session->restore(state); });
  return session;
}

// Several prompts in lock-step: one forward pass per step carries the next token of every
// sequence still generating, so the weights are read once per step for the whole batch. Sequence
// i samples with seed + i.
py::list generate_batch(const std::shared_ptr<Model>& model, const py::list& prompts_arg, const Compression& compression,
                        const GenerationArgs& args) {
  std::vector<std::vector<int32_t>> prompts;
  for (const py::handle& p : prompts_arg) prompts.push_back(token_ids(p, "prompts[i]"));
  check(!prompts.empty(), "generate needs at least one prompt");
  std::vector<std::shared_ptr<PySession>> sessions;
  for (const auto& p : prompts) {
    sessions.push_back(std::make_shared<PySession>(model, compression));
    sessions.back()->check_ids(p);
  }
  bool interrupted_by_signal = false;
  std::vector<GenerationResult> results = without_gil(*model, [&] {
    c10::InferenceMode inference;
    const Tokenizer& tokenizer = *sessions[0]->loaded().tokenizer;
    const size_t n = prompts.size();
    std::vector<std::unique_ptr<Generation>> generations;
    std::vector<Session*> all;
    std::vector<std::span<const int32_t>> spans;
    for (size_t i = 0; i < n; ++i) {
      generations.push_back(std::make_unique<Generation>(tokenizer, prompts[i], args.options(i)));
      all.push_back(&sessions[i]->live());
      spans.emplace_back(prompts[i]);
    }
    const auto prefill_start = Clock::now();
    std::vector<at::Tensor> logits = append_batch(all, spans, Logits::Last, kPrefillChunk);
    const double prefill = seconds_since(prefill_start);
    const auto decode_start = Clock::now();
    std::vector<int32_t> next(n);
    while (true) {
      std::vector<Session*> feeding;
      std::vector<size_t> index;
      for (size_t i = 0; i < n; ++i) {
        if (generations[i]->done()) continue;
        if (const auto token = generations[i]->next_token(logits[i])) {
          next[i] = *token;
          feeding.push_back(all[i]);
          index.push_back(i);
        }
        generations[i]->take_text();  // the result keeps the whole text
      }
      if (feeding.empty()) break;
      if (interrupted()) {
        interrupted_by_signal = true;
        for (auto& g : generations) g->cancel();
        break;
      }
      std::vector<std::span<const int32_t>> ones;
      for (size_t i : index) ones.emplace_back(&next[i], 1);
      std::vector<at::Tensor> fed = append_batch(feeding, ones, Logits::Last, 1);
      for (size_t k = 0; k < index.size(); ++k) {
        logits[index[k]] = fed[k];
        ++generations[index[k]]->result().decode_steps;
      }
    }
    const double decode = seconds_since(decode_start);
    std::vector<GenerationResult> out;
    for (auto& g : generations) {
      g->result().prefill_seconds = prefill;  // the batch's, shared
      g->result().decode_seconds = decode;
      out.push_back(g->result());
    }
    return out;
  });
  if (interrupted_by_signal) raise_pending();
  py::list out;
  for (const GenerationResult& r : results) out.append(result_dict(r, args.logprobs));
  return out;
}

}  // namespace

void bind_session(py::module_& m) {
  py::class_<GenerationArgs>(m, "GenerationArgs", "The generation keywords, checked (sentinel_kv.Model.generate).")
      .def(py::init([](int64_t max_tokens, double temperature, int64_t top_k, double top_p, double repetition_penalty,
                       uint64_t seed, std::vector<std::string> stop, bool ignore_eos, bool logprobs) {
             GenerationArgs a{max_tokens, temperature, top_k, top_p, repetition_penalty, seed, std::move(stop),
                              ignore_eos, logprobs};
             a.options();  // validates: the sampler's and the generator's messages
             return a;
           }),
           py::kw_only(), py::arg("max_tokens") = 128, py::arg("temperature") = 0.0, py::arg("top_k") = 0,
           py::arg("top_p") = 1.0, py::arg("repetition_penalty") = 1.0, py::arg("seed") = 0,
           py::arg("stop") = std::vector<std::string>{}, py::arg("ignore_eos") = false, py::arg("logprobs") = false);

  py::class_<PySession, std::shared_ptr<PySession>>(m, "Session",
      "One sequence read incrementally under a compression: its KV cache, positions and state.")
      .def(py::init<std::shared_ptr<Model>, Compression>(), py::arg("model"), py::arg("compression"))
      .def("append", &PySession::append, py::arg("ids"), py::arg("logits") = "last")
      .def("save", &PySession::save, py::arg("path"))
      .def("fork", &PySession::fork)
      .def("close", &PySession::close)
      .def_property_readonly("closed", &PySession::closed)
      .def_property_readonly("logits", &PySession::logits)
      .def_property_readonly("tokens", &PySession::tokens)
      .def_property_readonly("n_tokens", &PySession::n_tokens)
      .def_property_readonly("positions", &PySession::positions)
      .def_property_readonly("stats", &PySession::stats)
      .def_property_readonly("compression", &PySession::compression);
  m.def("load_session", &load_session, py::arg("model"), py::arg("path"), py::arg("compression") = py::none());

  py::class_<TokenStream>(m, "TokenStream", "Generated text, piece by piece, as an iterator.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &TokenStream::next)
      .def("close", &TokenStream::close)
      .def_property_readonly("result", &TokenStream::result);
  m.def("stream", [](std::shared_ptr<PySession> session, const py::handle& prompt, const GenerationArgs& args) {
          return TokenStream(std::make_unique<Driver>(std::move(session), token_ids(prompt, "prompt"), args.options()));
        }, py::arg("session"), py::arg("prompt"), py::arg("generation"));
  m.def("generate", [](std::shared_ptr<PySession> session, const py::handle& prompt, const GenerationArgs& args) {
          Driver driver(std::move(session), token_ids(prompt, "prompt"), args.options());
          return generate_to_end(driver);
        }, py::arg("session"), py::arg("prompt"), py::arg("generation"));
  m.def("generate_batch", &generate_batch, py::arg("model"), py::arg("prompts"), py::arg("compression"),
        py::arg("generation"));
}

}  // namespace sentinel::python
