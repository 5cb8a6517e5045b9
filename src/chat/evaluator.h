// Internal: renders a parsed template. Statements write to an output buffer; expressions evaluate
// to Values with Python's semantics; scopes follow Jinja's (a for-loop iteration and a macro call
// each open one, `if` does not, a macro sees the scope it was defined in). Every bound of
// RenderLimits is checked here or by the builtins through the accessors below.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <unordered_map>

#include "ast.h"
#include "sentinel/chat/jinja.h"
#include "sentinel/core/error.h"
#include "value.h"

namespace sentinel::jinja {

// A scope: its own variables, then its parent's.
struct Frame {
  explicit Frame(std::shared_ptr<Frame> parent_frame) : parent(std::move(parent_frame)) {}
  const Value* find(const std::string& name) const;
  std::shared_ptr<Frame> parent;
  std::unordered_map<std::string, Value> vars;
};

// An error that already says where in the template it happened.
struct PositionedError : Error {
  using Error::Error;
};
// raise_exception(message) in a template: the renderer prefixes where it was called.
struct TemplateRaised : Error {
  using Error::Error;
};

class Renderer {
 public:
  explicit Renderer(const RenderOptions& options);
  ~Renderer();  // breaks the reference cycles the render made (macro_scopes_, namespaces_)
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;
  std::string render(const Program& program, const nlohmann::ordered_json& variables);

  // For the builtins.
  Value call(const Value& callee, CallArgs& args);  // a builtin, bound method or macro
  TextBounds text_bounds() const { return {options_.limits.max_output_bytes}; }
  void check_text(size_t bytes) const;  // a string the template builds
  void check_list(size_t n) const;      // a list the template builds
  void step(int64_t n = 1);             // counts work against max_steps
  // Work proportional to size counts too: one step per 4 bytes or 2 items an operation reads or
  // builds, so that a loop over a huge string or list stops within about as long as max_steps
  // plain steps take, instead of running for hours.
  void charge_text(size_t bytes) { step(static_cast<int64_t>(bytes / 4)); }
  void charge_items(size_t n) { step(static_cast<int64_t>(n / 2)); }
  const std::tm& now() const { return now_; }
  void adopt_namespace(const Value& ns) { namespaces_.push_back(ns); }

 private:
  enum class Flow { Normal, Break, Continue };
  using FramePtr = std::shared_ptr<Frame>;

  Flow exec_body(const Body& body, const FramePtr& frame);
  Flow exec(const Stmt& s, const FramePtr& frame);
  Flow exec_for(const Stmt& s, const FramePtr& frame);
  void exec_set(const Stmt& s, const FramePtr& frame);
  std::string capture(const Body& body, const FramePtr& frame);  // renders into a string of its own
  void write(std::string_view text);

  Value eval(const Expr& e, const FramePtr& frame);
  Value eval_node(const Expr& e, const FramePtr& frame);
  Value eval_call(const Expr& e, const FramePtr& frame);
  Value eval_filter(const Expr& e, const FramePtr& frame);
  Value eval_compare(const Expr& e, const FramePtr& frame);
  CallArgs eval_args(const Expr& e, size_t first, const FramePtr& frame);
  Value call_macro(const Function& f, CallArgs& args);

  RenderOptions options_;
  std::tm now_{};
  std::string* out_ = nullptr;
  std::string block_body_;  // the subject of a {% filter %} / {% set | f %} chain
  int64_t steps_ = 0;
  int32_t call_depth_ = 0;
  // What can hold itself through shared pointers: a scope that defines a macro (the macro closes
  // over the scope), and a namespace (ns.me = ns). Emptied when the render ends, so nothing leaks.
  std::vector<std::shared_ptr<Frame>> macro_scopes_;
  std::vector<Value> namespaces_;
};

}  // namespace sentinel::jinja
