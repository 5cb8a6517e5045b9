// sentinel_kv._core: the module, its exception and the helpers every binding uses.
#include <Python.h>
#include <torch/csrc/autograd/python_variable.h>

#include "bindings.h"
#include "sentinel/core/error.h"
#include "sentinel/engine/cuda_runtime.h"

namespace sentinel::python {

bool interrupted() {
  py::gil_scoped_acquire acquire;
  return PyErr_CheckSignals() != 0;
}

void raise_pending() { throw py::error_already_set(); }

void throw_if_interrupted() {
  py::gil_scoped_acquire acquire;
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

std::vector<int32_t> token_ids(const py::handle& ids, const char* what) {
  std::vector<int64_t> values;
  if (THPVariable_Check(ids.ptr())) {
    const at::Tensor t = THPVariable_Unpack(ids.ptr());
    if (at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type()) || t.scalar_type() == at::kBool)
      throw py::type_error(std::string(what) + " must be integer token ids, got a " +
                           std::string(c10::toString(t.scalar_type())) + " tensor");
    if (t.dim() != 1)
      throw py::type_error(std::string(what) + " must be a 1-D tensor of token ids, got shape " + c10::str(t.sizes()));
    const at::Tensor longs = t.to(at::kCPU, at::kLong).contiguous();
    values.assign(longs.data_ptr<int64_t>(), longs.data_ptr<int64_t>() + longs.numel());
  } else if (py::isinstance<py::str>(ids) || py::isinstance<py::bytes>(ids)) {
    throw py::type_error(std::string(what) + " must be token ids; encode text with model.tokenizer.encode() first");
  } else {
    try {
      values = ids.cast<std::vector<int64_t>>();
    } catch (const py::cast_error&) {
      throw py::type_error(std::string(what) + " must be a list of int token ids or a 1-D integer tensor, got " +
                           std::string(py::str(py::type::of(ids).attr("__name__"))));
    }
  }
  std::vector<int32_t> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] < 0 || values[i] > INT32_MAX)
      throw py::value_error(std::string(what) + "[" + std::to_string(i) + "] = " + std::to_string(values[i]) +
                            " is not a token id");
    out[i] = static_cast<int32_t>(values[i]);
  }
  return out;
}

}  // namespace sentinel::python

PYBIND11_MODULE(_core, m) {
  namespace sp = sentinel::python;
  m.doc() = "The Sentinel engine (C++): models, KV-cache compression, sessions, generation, training. "
            "Use it through the sentinel_kv package.";
  sentinel::ensure_cuda_runtime();  // before anything asks libtorch for devices; a no-op without a GPU driver
  // One error model: every failure a caller can fix is a sentinel::Error with a message naming the
  // value and the fix, the same words the CLI prints. In Python it is a ValueError.
  pybind11::register_exception<sentinel::Error>(m, "SentinelError", PyExc_ValueError);
  sp::bind_compression(m);
  sp::bind_model(m);
  sp::bind_session(m);
  sp::bind_training(m);
}
