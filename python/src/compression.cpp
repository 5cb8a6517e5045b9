// _core.Compression: the CLI's compression options as keywords, resolved and checked by the same
// code (engine/compression.h), and policies written in Python (a ScoredPolicy over their scores).
#include <sys/stat.h>
#include <torch/csrc/autograd/python_variable.h>

#include "bindings.h"
#include "sentinel/core/error.h"
#include "sentinel/model/adapter.h"
#include "sentinel/policies/scored.h"

namespace sentinel::python {
namespace {

// A Python object held from C++ code that may run without the GIL: copied as a shared_ptr (no
// reference counting), released under the GIL.
struct PythonObject {
  explicit PythonObject(py::object o) : object(std::move(o)) {}
  ~PythonObject() {
    py::gil_scoped_acquire acquire;
    object = py::object();
  }
  py::object object;
};

// What a Python policy's score() sees: the cells the engine must choose among. Valid during the
// call only (it reads the live cache); the tensors it returns are copies and stay valid.
class CacheView {
 public:
  explicit CacheView(const ScoreRequest& r)
      : cells_(r.cells.begin(), r.cells.end()), cache_(r.cache), keep_(r.keep), n_read_(r.next_index) {}
  void expire() { cache_ = nullptr; }
  at::Tensor positions() const { return cell_positions(cells_); }
  at::Tensor is_sentinel() const {
    at::Tensor out = at::empty({static_cast<int64_t>(cells_.size())}, at::kBool);
    for (size_t i = 0; i < cells_.size(); ++i) out[static_cast<int64_t>(i)] = cells_[i].kind != CellKind::Ordinary;
    return out;
  }
  // [n_head_kv, cells the layer holds, head_dim] float (a sliding-window layer holds its window only).
  at::Tensor keys(int64_t layer) const { return rows(layer, /*keys=*/true); }
  at::Tensor values(int64_t layer) const { return rows(layer, /*keys=*/false); }
  int64_t keep() const { return keep_; }
  int64_t n_read() const { return n_read_; }
  int64_t n_layer() const { return live().n_layer(); }
  int64_t size() const { return static_cast<int64_t>(cells_.size()); }

 private:
  const KvCache& live() const {
    check(cache_ != nullptr, "this CacheView belongs to a score() call that has returned; read what you need "
          "from it inside score()");
    return *cache_;
  }
  at::Tensor rows(int64_t layer, bool keys) const {
    const KvCache& cache = live();
    check(layer >= 0 && layer < cache.n_layer(), "layer ", layer, " is out of range: the model has ", cache.n_layer(),
          " layers");
    const int64_t n = static_cast<int64_t>(cells_.size());
    c10::InferenceMode inference;
    return (keys ? cache.keys(layer, n) : cache.values(layer, n))[0].to(at::kFloat).clone();
  }
  std::vector<CacheCell> cells_;
  const KvCache* cache_;
  int64_t keep_, n_read_;
};

// A fresh ScoredPolicy over a fresh copy of the Python policy (its state is per sequence).
std::unique_ptr<CompressionPolicy> scored_policy(const std::shared_ptr<PythonObject>& prototype, double ratio,
                                                 bool observes_attention) {
  std::shared_ptr<PythonObject> instance;
  {
    py::gil_scoped_acquire acquire;
    instance = std::make_shared<PythonObject>(prototype->object.attr("_new_instance")());
  }
  CellScorer score = [instance](const ScoreRequest& request) {
    py::gil_scoped_acquire acquire;
    auto view = std::make_shared<CacheView>(request);
    // The view reads the live cache: it expires when score() returns or raises (a traceback or a
    // debugger may keep it alive after).
    struct Expire {
      CacheView& view;
      ~Expire() { view.expire(); }
    } expire{*view};
    py::object result = instance->object.attr("_score")(view);
    check(THPVariable_Check(result.ptr()), "the policy's _score() must return a torch.Tensor");
    return THPVariable_Unpack(result.ptr());
  };
  AttentionObserver observe;
  if (observes_attention) {
    observe = [instance](std::span<const CacheCell> cells, const at::Tensor& mass) {
      const at::Tensor positions = cell_positions(cells);
      const at::Tensor attention = mass.to(at::kCPU, at::kFloat).clone();
      py::gil_scoped_acquire acquire;
      instance->object.attr("_observe")(positions, attention);
    };
  }
  return std::make_unique<ScoredPolicy>(ratio, std::move(score), std::move(observe));
}

Compression named(const std::string& compress, double ratio, std::optional<int64_t> span, const std::string& layout,
                  int64_t window, int64_t sinks, std::optional<double> stride_share,
                  std::optional<std::string> older_rank, uint64_t compress_seed, std::optional<std::string> adapter,
                  const std::string& kv_dtype) {
  Compression c;
  if (kv_dtype != "auto") parse_kv_storage(kv_dtype);  // names the accepted values
  c.kv_dtype = kv_dtype;
  c.args.method = compress;
  c.args.layout = layout;
  c.args.policy.ratio = ratio;
  // The CLI's --span default follows --layout (policy.h: default_span); parse_span_layout names bad layouts.
  c.args.policy.span = span ? *span : default_span(parse_span_layout(layout));
  c.args.policy.window = window;
  c.args.policy.sinks = sinks;
  c.args.policy.seed = compress_seed;
  c.args.stride_share = stride_share.value_or(-1.0);
  c.args.older_rank = older_rank.value_or("");
  c.args.adapter = adapter.value_or("");
  if (!c.args.adapter.empty() && c.args.adapter != "none") {
    struct stat info {};  // as the CLI's --adapter check: an existing file, before any model loads
    check(::stat(c.args.adapter.c_str(), &info) == 0 && S_ISREG(info.st_mode), "adapter '", c.args.adapter,
          "' is not a file; give an adapter written by sentinel train, or 'none'");
  }
  c.policy = parse_compression(c.args);
  return c;
}

Compression custom(py::object policy, double ratio, bool observes_attention, const std::string& kv_dtype) {
  check(kRatioBound.holds(ratio) && ratio > 0.0, kRatioBound.refusal(ratio), "; a policy needs ratio > 0");
  Compression c;
  if (kv_dtype != "auto") parse_kv_storage(kv_dtype);
  c.kv_dtype = kv_dtype;
  c.args.method = "custom";
  c.policy.method = Method::Custom;
  c.policy.ratio = ratio;
  c.custom = std::move(policy);
  c.custom_observes_attention = observes_attention;
  auto prototype = std::make_shared<PythonObject>(c.custom);
  c.policy.custom = std::make_shared<const PolicyMaker>(
      [prototype, ratio, observes_attention] { return scored_policy(prototype, ratio, observes_attention); });
  return c;
}

}  // namespace

void bind_compression(py::module_& m) {
  py::class_<CacheView, std::shared_ptr<CacheView>>(m, "CacheView",
      "What a Policy's score() sees when the engine must evict: the cached entries in feeding order.")
      .def_property_readonly("positions", &CacheView::positions, "[n] int64: each entry's token position")
      .def_property_readonly("is_sentinel", &CacheView::is_sentinel, "[n] bool: <CL>/<CR> entries (sentinel layouts only)")
      .def_property_readonly("keep", &CacheView::keep, "how many entries stay: the highest scores")
      .def_property_readonly("n_read", &CacheView::n_read, "ordinary tokens read so far")
      .def_property_readonly("n_layer", &CacheView::n_layer)
      .def("__len__", &CacheView::size)
      .def("keys", &CacheView::keys, py::arg("layer"),
           "[n_head_kv, n, head_dim] float32 copy of one layer's cached keys (rotary applied)")
      .def("values", &CacheView::values, py::arg("layer"), "[n_head_kv, n, head_dim] float32 copy of one layer's values");

  py::class_<Compression>(m, "Compression",
      "How a call compresses the KV cache, with the options of the CLI's --compress, --ratio, ... (same names, "
      "same defaults, same checks and messages).")
      .def(py::init(&named), py::kw_only(), py::arg("compress") = "none", py::arg("ratio") = 0.0,
           py::arg("span") = py::none(), py::arg("layout") = span_layout_name(default_span_layout()), py::arg("window") = 0, py::arg("sinks") = 4,
           py::arg("stride_share") = py::none(), py::arg("older_rank") = py::none(), py::arg("compress_seed") = 0,
           py::arg("adapter") = py::none(), py::arg("kv_dtype") = "auto")
      .def_static("custom", &custom, py::arg("policy"), py::arg("ratio"), py::arg("observes_attention"),
                  py::arg("kv_dtype") = "auto",
                  "A policy object with _new_instance/_score/_observe (sentinel_kv.Policy provides them).")
      .def_property_readonly("compress", [](const Compression& c) { return c.args.method; })
      .def_property_readonly("ratio", [](const Compression& c) { return c.policy.ratio; })
      .def_property_readonly("span", [](const Compression& c) { return c.policy.span; })
      .def_property_readonly("layout", [](const Compression& c) { return span_layout_name(c.policy.layout); })
      .def_property_readonly("window", [](const Compression& c) { return c.policy.window; })
      .def_property_readonly("sinks", [](const Compression& c) { return c.policy.sinks; })
      .def_property_readonly("stride_share", [](const Compression& c) { return c.policy.stride_share; })
      .def_property_readonly("older_rank", [](const Compression& c) { return older_rank_name(c.policy.older_rank); })
      .def_property_readonly("compress_seed", [](const Compression& c) { return c.policy.seed; })
      .def_property_readonly("adapter", [](const Compression& c) { return c.args.adapter; })
      .def_property_readonly("kv_dtype", [](const Compression& c) { return c.kv_dtype; })
      .def_property_readonly("policy", [](const Compression& c) { return c.custom ? c.custom : py::none(); },
                             "the Python policy of a custom compression, else None")
      .def_property_readonly("reads_attention", [](const Compression& c) { return reads_attention(c.policy); },
                             "whether the plan depends on attention (then chunking matters; no saved sessions)")
      .def_property_readonly("read_chunk", [](const Compression& c) { return default_read_chunk(c.policy); },
                             "tokens per forward pass when a text is scored without a chunk, as `sentinel ppl`")
      .def("__repr__", [](const Compression& c) {
        return c.policy.method == Method::Custom
                   ? "Compression(custom " + std::string(py::repr(c.custom)) + ", ratio " + std::to_string(c.policy.ratio) + ")"
                   : "Compression(" + describe(c.policy) + ")";
      });
}

}  // namespace sentinel::python
