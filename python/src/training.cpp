// _core.train and _core.export_peft: `sentinel train` run in-process (the CLI's own parsing,
// checks, log, checkpoints and --resume) with a Python progress callback, and the peft export.
#include "bindings.h"
#include "sentinel/core/error.h"

namespace sentinel::python {

void bind_training(py::module_& m) {
  m.def("train", [](const std::vector<std::string>& args, const py::object& on_step) {
          bool interrupted_by_signal = false;
          std::exception_ptr callback_error;  // raised by on_step: the run stops (checkpoint written), then it is re-raised
          cli::TrainHooks hooks;
          // After every update: Ctrl-C stops the run as it does on the command line (checkpoint and
          // adapter written), then the KeyboardInterrupt reaches the caller; the callback may stop it too.
          hooks.on_step = [&](const nlohmann::json& update) {
            py::gil_scoped_acquire acquire;
            if (PyErr_CheckSignals() != 0) {
              interrupted_by_signal = true;
              return false;
            }
            if (on_step.is_none()) return true;
            try {
              const py::object keep_going = on_step(py::module_::import("json").attr("loads")(update.dump()));
              return keep_going.is_none() || PyObject_IsTrue(keep_going.ptr()) == 1;
            } catch (...) {
              callback_error = std::current_exception();
              return false;
            }
          };
          int code = 0;
          {
            py::gil_scoped_release release;
            code = cli::run_train_command(args, hooks);
          }
          if (interrupted_by_signal) raise_pending();
          if (callback_error) std::rethrow_exception(callback_error);
          return code;
        }, py::arg("args"), py::arg("on_step") = py::none(),
        "Runs `sentinel train ARGS...` in this process; returns 0 when it finished, 130 when on_step stopped it. "
        "Ctrl-C (or an exception in on_step) stops it too, after its checkpoint is written, and is raised.");
  m.def("export_peft", &cli::export_adapter, py::arg("adapter"), py::arg("dir"), py::arg("base_model_name_or_path") = "",
        py::arg("lora_dropout") = 0.0, py::call_guard<py::gil_scoped_release>(),
        "What `sentinel export` does; returns the line it prints.");
}

}  // namespace sentinel::python
