// _core.Session and _core.TokenStream: one sequence read incrementally under a compression
// (engine/session.h), generation from it (engine/generator.h: Generation drives every loop here),
// its state saved, loaded and forked through the CLI's and server's state files, and batched
// generation over several sequences in lock-step (append_batch).
#include "bindings.h"
#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "sentinel/server/session_state.h"
#include "sentinel/server/state_file.h"

namespace sentinel::python {
namespace {

// The first cache allocation of a session; it grows by doubling only as far as the policy lets it.
constexpr int64_t kInitialCells = 256;
constexpr int64_t kPrefillChunk = 512;

Logits parse_logits(const std::string& which) {
  if (which == "last") return Logits::Last;
  if (which == "all") return Logits::All;
  if (which == "none") return Logits::None;
  fail("logits must be 'last', 'all' or 'none', got '", which, "'");
}

GenerationOptions generation_options(int64_t max_tokens, double temperature, int64_t top_k, double top_p,
                                     double repetition_penalty, uint64_t seed, const std::vector<std::string>& stop,
                                     bool ignore_eos, bool logprobs) {
  GenerationOptions o;
  o.max_tokens = max_tokens;
  o.sampling = SamplingOptions{temperature, top_k, top_p, repetition_penalty, seed};
  o.stop_strings = stop;
  o.stop_at_eos = !ignore_eos;
  o.logprobs = logprobs;
  o.validate();
  return o;
}

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

class PySession : public std::enable_shared_from_this<PySession> {
 public:
  PySession(std::shared_ptr<Model> model, Compression compression)
      : model_(std::move(model)), compression_(std::move(compression)) {
    without_gil(*model_, [&] {
      std::tie(loaded_, policy_) = model_->prepare(compression_);
      const KvStorageScope storage(*loaded_, compression_);
      session_ = std::make_unique<Session>(loaded_->model, loaded_->model->cache_options(kInitialCells), policy_);
    });
  }

  Session& live() {
    check(session_ != nullptr, "this session is closed; open a new one with model.session()");
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

  // Feeds tokens in prefill chunks, checking for Ctrl-C between chunks. GIL released by the caller.
  at::Tensor feed(std::span<const int32_t> ids, Logits which) {
    Session& s = live();
    std::vector<at::Tensor> all;
    at::Tensor last;
    for (size_t begin = 0; begin < ids.size(); begin += kPrefillChunk) {
      if (begin > 0) throw_if_interrupted();
      const auto piece = ids.subspan(begin, std::min<size_t>(kPrefillChunk, ids.size() - begin));
      at::Tensor logits = s.append(piece, which, kPrefillChunk);
      tokens_.insert(tokens_.end(), piece.begin(), piece.end());
      if (which == Logits::All) all.push_back(logits);
      last = which == Logits::All ? logits[logits.size(0) - 1] : logits;
    }
    if (which != Logits::None) logits_ = last;
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

  py::dict generate(const py::handle& prompt_arg, const GenerationOptions& options) {
    const std::vector<int32_t> prompt = token_ids(prompt_arg, "prompt");
    check_ids(prompt);
    bool cancelled_by_signal = false;
    GenerationResult r = without_gil(*model_, [&] {
      c10::InferenceMode inference;
      Session& s = live();
      // Every piece of text is a point where Ctrl-C can stop the generation cleanly.
      TextCallback on_text = [&](std::string_view) {
        cancelled_by_signal = interrupted();
        return !cancelled_by_signal;
      };
      GenerationResult result = generate_in(s, prompt, options, on_text);
      return result;
    });
    if (cancelled_by_signal) raise_pending();
    return result_dict(r, options.logprobs);
  }

  // sentinel::generate over this session, keeping the record of the tokens it fed.
  GenerationResult generate_in(Session& s, std::span<const int32_t> prompt, const GenerationOptions& options,
                               const TextCallback& on_text) {
    GenerationResult r = sentinel::generate(s, *loaded_->tokenizer, prompt, options, on_text);
    tokens_.insert(tokens_.end(), prompt.begin(), prompt.end());
    tokens_.insert(tokens_.end(), r.tokens.begin(), r.tokens.end());
    tokens_.resize(static_cast<size_t>(s.next_position()));  // the last sampled token is never fed
    logits_ = at::Tensor();  // the last logits belong to a token generate() sampled, not to the caller
    return r;
  }

  int64_t save(const std::string& path) {
    return without_gil(*model_, [&] {
      Session& s = live();
      check(server::resumable(policy_), "a ", describe(policy_), " session cannot be saved: its plan depends on ",
            "attention scores that a state file does not hold (h2o, sentinel --layout heavy, custom policies)");
      return server::save_state_file(path, capture(s), state_info());
    });
  }

  // The session's state with the compression it was read under.
  server::SessionState capture(Session& s) {
    server::SessionState state = server::capture_state(s, tokens_);
    state.policy = policy_;
    return state;
  }

  server::StateFileInfo state_info() { return {model_fingerprint(loaded_->model), loaded_->name}; }

  // A session that continues from `state` (read from a file or captured from another session).
  void restore(const server::SessionState& state) {
    check(describe(state.policy) == describe(policy_) && state.policy.spans.empty() == policy_.spans.empty(),
          "the saved state was compressed with ", describe(state.policy), ", this session asks for ", describe(policy_),
          "; use the same compression options");
    server::restore_state(live(), state);
    tokens_ = state.tokens;
  }

  std::shared_ptr<PySession> fork() {
    auto copy = std::make_shared<PySession>(model_, compression_);
    without_gil(*model_, [&] {
      check(server::resumable(policy_), "a ", describe(policy_), " session cannot be forked: its plan depends on ",
            "attention scores the copy could not continue (h2o, sentinel --layout heavy, custom policies)");
      copy->restore(capture(live()));
      copy->logits_ = logits_;
    });
    return copy;
  }

  void close() {
    without_gil(*model_, [&] { session_.reset(); });
  }
  bool closed() const { return session_ == nullptr; }
  at::Tensor logits() const { return logits_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }

  at::Tensor positions() {
    const auto& cells = live().cache().cells();
    at::Tensor out = at::empty({static_cast<int64_t>(cells.size())}, at::kLong);
    for (size_t i = 0; i < cells.size(); ++i) out[static_cast<int64_t>(i)] = cells[i].position;
    return out;
  }

  py::dict stats() {
    Session& s = live();
    const CompressionStats& st = s.stats();
    py::dict out;
    out["tokens_read"] = st.ordinary_seen;
    out["sentinels_fed"] = st.sentinels_fed;
    out["entries"] = s.cache().size();
    out["entries_evicted"] = st.cells_evicted;
    out["kv_bytes"] = s.cache().bytes_in_use();
    out["kv_bytes_uncompressed"] = s.cache().bytes_uncompressed(st.ordinary_seen);
    out["peak_kv_bytes"] = st.peak_bytes;
    out["achieved_ratio"] = st.achieved_ratio();
    return out;
  }

 private:
  std::shared_ptr<Model> model_;
  Compression compression_;  // keeps a Python policy alive as long as the session
  LoadedModel* loaded_ = nullptr;
  PolicyOptions policy_;
  std::unique_ptr<Session> session_;
  std::vector<int32_t> tokens_;  // ordinary tokens fed, for state files and forks
  at::Tensor logits_;            // [n_vocab] what the last fed token predicts; undefined after generate()
};

std::shared_ptr<PySession> load_session(std::shared_ptr<Model> model, const std::string& path,
                                        std::optional<Compression> compression) {
  if (!compression) {
    // The compression the file was saved with, and the adapter that compression reads with by default.
    const server::SessionState peek = without_gil(*model, [&] {
      return server::load_state_file(path, {model_fingerprint(model->base().model), model->base().name});
    });
    Compression c;
    c.args.method = method_name(peek.policy.method);
    c.args.layout = span_layout_name(peek.policy.layout);
    c.args.stride_share = peek.policy.stride_share;
    c.args.older_rank = older_rank_name(peek.policy.older_rank);
    c.args.policy = peek.policy;
    c.policy = peek.policy;
    compression = c;
  }
  auto session = std::make_shared<PySession>(model, *compression);
  without_gil(*model, [&] { session->restore(server::load_state_file(path, session->state_info())); });
  return session;
}

// Generation as a Python iterator: each next() samples one token and returns the text that became
// final; the token is fed at the following next(), so leaving the loop leaves no work behind.
class TokenStream {
 public:
  TokenStream(std::shared_ptr<PySession> session, std::vector<int32_t> prompt, const GenerationOptions& options)
      : session_(std::move(session)), prompt_(std::move(prompt)), options_(options) {
    session_->check_ids(prompt_);
    generation_ = std::make_unique<Generation>(*session_->loaded().tokenizer, prompt_, options_);
  }

  std::string next() {
    Model& model = session_->model();
    std::string text = without_gil(model, [&] {
      c10::InferenceMode inference;
      Session& s = session_->live();
      std::string out;
      while (out.empty()) {
        if (!prefilled_) {
          logits_ = session_->feed(prompt_, Logits::Last);
          prefilled_ = true;
        } else if (to_feed_) {
          const int32_t one[] = {*to_feed_};
          to_feed_.reset();
          logits_ = s.append(one, Logits::Last);
        }
        if (generation_->done()) break;
        to_feed_ = generation_->next_token(logits_);
        out = generation_->take_text();
      }
      return out;
    });
    if (text.empty()) throw py::stop_iteration();
    return text;
  }

  py::dict result() { return result_dict(generation_->result(), options_.logprobs); }
  void close() {
    if (!generation_->done()) generation_->cancel();
  }

 private:
  std::shared_ptr<PySession> session_;
  std::vector<int32_t> prompt_;
  GenerationOptions options_;
  std::unique_ptr<Generation> generation_;
  at::Tensor logits_;
  bool prefilled_ = false;
  std::optional<int32_t> to_feed_;
};

// Several prompts in lock-step: one forward pass per step carries the next token of every
// sequence still generating, so the weights are read once per step for the whole batch.
py::list generate_batch(const std::shared_ptr<Model>& model, const py::list& prompts_arg, const Compression& compression,
                        const GenerationOptions& options) {
  std::vector<std::vector<int32_t>> prompts;
  for (const py::handle& p : prompts_arg) prompts.push_back(token_ids(p, "prompts[i]"));
  check(!prompts.empty(), "generate needs at least one prompt");
  std::vector<std::shared_ptr<PySession>> sessions;
  for (const auto& p : prompts) {
    sessions.push_back(std::make_shared<PySession>(model, compression));
    sessions.back()->check_ids(p);
  }
  bool cancelled_by_signal = false;
  std::vector<GenerationResult> results = without_gil(*model, [&] {
    c10::InferenceMode inference;
    const Tokenizer& tokenizer = *sessions[0]->loaded().tokenizer;
    const size_t n = prompts.size();
    std::vector<std::unique_ptr<Generation>> generations;
    std::vector<Session*> all;
    std::vector<std::span<const int32_t>> spans;
    for (size_t i = 0; i < n; ++i) {
      generations.push_back(std::make_unique<Generation>(tokenizer, prompts[i], options));
      all.push_back(&sessions[i]->live());
      spans.emplace_back(prompts[i]);
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<at::Tensor> logits = append_batch(all, spans, Logits::Last, options.prefill_chunk);
    const double prefill = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto decode_start = std::chrono::steady_clock::now();
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
        generations[i]->take_text();
      }
      if (feeding.empty()) break;
      if (interrupted()) {
        cancelled_by_signal = true;
        for (auto& g : generations)
          if (!g->done()) g->cancel();
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
    const double decode = std::chrono::duration<double>(std::chrono::steady_clock::now() - decode_start).count();
    std::vector<GenerationResult> out;
    for (auto& g : generations) {
      g->result().prefill_seconds = prefill;  // the batch's, shared
      g->result().decode_seconds = decode;
      out.push_back(g->result());
    }
    return out;
  });
  if (cancelled_by_signal) raise_pending();
  py::list out;
  for (size_t i = 0; i < results.size(); ++i) out.append(result_dict(results[i], options.logprobs));
  return out;
}

}  // namespace

void bind_session(py::module_& m) {
  py::class_<PySession, std::shared_ptr<PySession>>(m, "Session",
      "One sequence read incrementally under a compression: its KV cache, positions and state.")
      .def(py::init<std::shared_ptr<Model>, Compression>(), py::arg("model"), py::arg("compression"))
      .def("append", &PySession::append, py::arg("ids"), py::arg("logits") = "last")
      .def("generate", [](PySession& s, const py::handle& prompt, int64_t max_tokens, double temperature, int64_t top_k,
                          double top_p, double repetition_penalty, uint64_t seed, const std::vector<std::string>& stop,
                          bool ignore_eos, bool logprobs) {
             return s.generate(prompt, generation_options(max_tokens, temperature, top_k, top_p, repetition_penalty,
                                                          seed, stop, ignore_eos, logprobs));
           }, py::arg("prompt"), py::kw_only(), py::arg("max_tokens"), py::arg("temperature"), py::arg("top_k"),
           py::arg("top_p"), py::arg("repetition_penalty"), py::arg("seed"), py::arg("stop"), py::arg("ignore_eos"),
           py::arg("logprobs"))
      .def("save", &PySession::save, py::arg("path"))
      .def("fork", &PySession::fork)
      .def("close", &PySession::close)
      .def_property_readonly("closed", &PySession::closed)
      .def_property_readonly("logits", [](PySession& s) {
        return s.logits().defined() ? py::cast(s.logits()) : py::object(py::none());
      })
      .def_property_readonly("tokens", &PySession::tokens)
      .def_property_readonly("positions", &PySession::positions)
      .def_property_readonly("stats", &PySession::stats)
      .def_property_readonly("compression", &PySession::compression);
  m.def("load_session", &load_session, py::arg("model"), py::arg("path"), py::arg("compression") = py::none());

  py::class_<TokenStream>(m, "TokenStream", "Generated text, piece by piece, as an iterator.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &TokenStream::next)
      .def("close", &TokenStream::close)
      .def_property_readonly("result", &TokenStream::result);
  m.def("stream", [](std::shared_ptr<PySession> session, const py::handle& prompt, int64_t max_tokens, double temperature,
                     int64_t top_k, double top_p, double repetition_penalty, uint64_t seed,
                     const std::vector<std::string>& stop, bool ignore_eos, bool logprobs) {
          return std::make_unique<TokenStream>(
              std::move(session), token_ids(prompt, "prompt"),
              generation_options(max_tokens, temperature, top_k, top_p, repetition_penalty, seed, stop, ignore_eos, logprobs));
        }, py::arg("session"), py::arg("prompt"), py::kw_only(), py::arg("max_tokens"), py::arg("temperature"),
        py::arg("top_k"), py::arg("top_p"), py::arg("repetition_penalty"), py::arg("seed"), py::arg("stop"),
        py::arg("ignore_eos"), py::arg("logprobs"));
  m.def("generate_batch", [](std::shared_ptr<Model> model, const py::list& prompts, const Compression& compression,
                             int64_t max_tokens, double temperature, int64_t top_k, double top_p,
                             double repetition_penalty, uint64_t seed, const std::vector<std::string>& stop,
                             bool ignore_eos, bool logprobs) {
          return generate_batch(model, prompts, compression,
                                generation_options(max_tokens, temperature, top_k, top_p, repetition_penalty, seed,
                                                   stop, ignore_eos, logprobs));
        }, py::arg("model"), py::arg("prompts"), py::arg("compression"), py::kw_only(), py::arg("max_tokens"),
        py::arg("temperature"), py::arg("top_k"), py::arg("top_p"), py::arg("repetition_penalty"), py::arg("seed"),
        py::arg("stop"), py::arg("ignore_eos"), py::arg("logprobs"));
}

}  // namespace sentinel::python
