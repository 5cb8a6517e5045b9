// A small Jinja2 interpreter for chat templates (tokenizer.chat_template): renders a model's own
// template the way transformers' apply_chat_template does (jinja2 with trim_blocks, lstrip_blocks,
// loop controls, transformers' tojson / raise_exception / strftime_now, the immutable sandbox).
// Not a general Jinja: no template inheritance, includes, imports, {% call %} or autoescaping.
// docs/tokenizer.md ("Chat templates") lists what is supported.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sentinel::jinja {

struct Program;  // the parsed template (src/chat/ast.h)

// Bounds that stop a hostile template from hanging or exhausting memory. Crossing one throws
// sentinel::Error naming it. The defaults are far beyond what real chat templates need: see
// max_steps.
struct RenderLimits {
  // Bytes of rendered text, and of any one string, list text or JSON the template builds on the way.
  size_t max_output_bytes = size_t{64} << 20;
  // Work per render, which bounds its time: each expression, statement and loop iteration is a
  // step, and so is every 4 bytes or 2 items an operation reads or builds (a loop over a 50 MB
  // string stops as soon as a loop of small steps would). 20 million steps take 1 to 2 s on the
  // 2-core development VM. 1,000 messages of 1 KB (1 MB of prompt) take about 1 million steps with
  // Qwen3's or Llama 3.1's template and 4.4 million with Gemma 4's, the most expensive one.
  int64_t max_steps = 20'000'000;
  // Nested macro calls (a recursive macro recurses at most this deep).
  int32_t max_call_depth = 64;
  // Elements of any one list the template builds (range(), list * n, list + list, |list, ...).
  // range() itself is limited to 100,000 items, as in jinja2's sandbox.
  int64_t max_list_items = 1'000'000;
};
// Parsing bounds nesting (brackets, operators, blocks) at 100 levels, which bounds recursion.

struct RenderOptions {
  RenderLimits limits;
  // The time strftime_now() formats; unset: the local time at render (transformers' datetime.now()).
  // Set it to make renderings that print the date (Llama 3.2, Mistral Small 3.x, Granite) reproducible.
  std::optional<std::tm> now;
};

class Template {
 public:
  // Parses the template. Throws sentinel::Error "chat template line L, column C: ..." for a syntax
  // error, an unknown filter or test, or a construct this interpreter does not support.
  explicit Template(std::string_view source);
  ~Template();
  Template(Template&&) noexcept;
  Template& operator=(Template&&) noexcept;

  // Renders with `variables` (a JSON object) as the template's global variables, e.g. messages,
  // add_generation_prompt, bos_token, eos_token, tools, and any extra kwargs (enable_thinking).
  // A key that is absent is undefined in the template; a null is None. The builtins transformers
  // adds (raise_exception, strftime_now, namespace, dict, range) are always present. Throws
  // sentinel::Error with the position for runtime errors (undefined values used, wrong types, a
  // RenderLimits bound crossed), and "chat template raised an error at line L, column C: <message>"
  // for raise_exception(message). Thread-safe: a Template is immutable once parsed.
  std::string render(const nlohmann::ordered_json& variables, const RenderOptions& options = {}) const;

 private:
  std::unique_ptr<const Program> program_;
};

}  // namespace sentinel::jinja
