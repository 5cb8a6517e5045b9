// The pieces of the sentinel_kv._core extension: a loaded model with the variants compression
// asks for, compression options, sessions and generation, each bound by its own file. Every call
// into the engine releases the GIL and holds the model's lock (one call at a time per model, from
// any thread); callbacks into Python (custom policies, progress, Ctrl-C checks) take the GIL back.
#pragma once

#include <torch/csrc/utils/pybind.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common.h"  // the CLI's ModelArgs and open_model (tools/sentinel/common.h)
#include "sentinel/engine/compression.h"
#include "sentinel/engine/generator.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/engine/session.h"

namespace sentinel::python {

namespace py = pybind11;

// How a call compresses: the CLI's options by name, resolved and checked when made, or a policy
// written in Python (policy.cpp).
struct Compression {
  CompressionArgs args;     // as asked
  PolicyOptions policy;     // parse_compression(args): sentinel ids are placeholders until prepared for a model
  py::object custom;        // a Python policy object (Method::Custom), else None
  bool custom_observes_attention = false;
  std::string kv_dtype = "auto";  // KV storage for this call (--kv-dtype); auto = the model's
};

// A model as Python holds it. Adapters merge LoRA into the weights, so each adapter a compression
// asks for gets its own copy of the model, loaded once and kept (the base is adapter "").
class Model {
 public:
  explicit Model(cli::ModelArgs args);
  LoadedModel& base() { return *base_; }
  // The model a compression reads with (its adapter merged) and its completed policy.
  std::pair<LoadedModel*, PolicyOptions> prepare(const Compression& compression);
  // The uncompressed dense float32 model KL is measured against (loaded on first use).
  LoadedModel& reference();

  // Held by every call into the engine: sessions and caches are not thread-safe, so calls from
  // several threads wait for each other. A policy written in Python runs inside such a call and
  // must not call the engine again (it would change the session mid-pass): that is refused.
  void lock();
  void unlock();

 private:
  cli::ModelArgs args_;
  std::unique_ptr<LoadedModel> base_;                              // adapter ""
  std::map<std::string, std::unique_ptr<LoadedModel>> variants_;  // adapter file -> model with it merged
  std::map<std::string, std::string> adapter_choice_;            // (layout, requested) -> adapter_for()
  std::unique_ptr<LoadedModel> reference_;
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_{};
};

// The KV storage a compression asks for, set on its model for one call (calls hold the model's
// lock) and restored after; "auto" leaves the model's own. Sessions keep what they were made with.
class KvStorageScope {
 public:
  KvStorageScope(LoadedModel& loaded, const Compression& compression);
  ~KvStorageScope() { model_->set_kv_storage(saved_); }
  KvStorageScope(const KvStorageScope&) = delete;
  KvStorageScope& operator=(const KvStorageScope&) = delete;

 private:
  DecoderModel model_;
  KvStorage saved_;
};

// Runs `fn` with the GIL released and the model locked.
template <typename Fn>
auto without_gil(Model& model, Fn&& fn) {
  py::gil_scoped_release release;
  std::lock_guard<Model> lock(model);
  return fn();
}

// [n] int64: the positions of cells.
at::Tensor cell_positions(std::span<const CacheCell> cells);

// Whether Ctrl-C (or another signal with a Python handler) arrived: takes the GIL, runs the
// handlers, and leaves the exception set for the caller to raise once the C++ work has unwound.
bool interrupted();
// Raises the exception interrupted() left pending. Needs the GIL.
[[noreturn]] void raise_pending();
// interrupted(), raised at once as the pending Python exception (KeyboardInterrupt); callable
// without the GIL, from deep inside the engine: the exception unwinds the C++ work.
void throw_if_interrupted();

// Token ids from a Python list of ints or an integer tensor; `what` names the argument in errors.
std::vector<int32_t> token_ids(const py::handle& ids, const char* what);

void bind_model(py::module_& m);
void bind_compression(py::module_& m);
void bind_session(py::module_& m);
void bind_training(py::module_& m);

}  // namespace sentinel::python
