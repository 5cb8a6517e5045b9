// libFuzzer target: parse arbitrary bytes as a chat template and render it, as apply_chat_template
// would, over a conversation with tools, under tight RenderLimits. sentinel::Error is the expected
// outcome for a bad or hostile template; any other exception, a crash, a hang (a render must stop
// at its max_steps) or memory growth past the limits is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sentinel/chat/jinja.h"
#include "sentinel/core/error.h"

namespace {

const nlohmann::ordered_json& variables() {
  static const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": " Be brief. "},
      {"role": "user", "content": "Hi <b>&</b> ünï 👋\n"},
      {"role": "assistant", "content": "<think>\nr\n</think>\n\nHello", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"x": 1, "y": [true, null]}}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "{\"ok\": 1.5}"},
      {"role": "user", "content": ""}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
      "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}}}],
    "documents": null, "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
    "enable_thinking": false})");
  return vars;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sentinel::jinja::RenderOptions options;
  options.limits.max_output_bytes = 1 << 20;
  options.limits.max_steps = 200'000;
  options.limits.max_call_depth = 32;
  options.limits.max_list_items = 100'000;
  options.now = std::tm{};
  try {
    const sentinel::jinja::Template t(std::string_view(reinterpret_cast<const char*>(data), size));
    const std::string out = t.render(variables(), options);
    if (out.size() > options.limits.max_output_bytes) __builtin_trap();
  } catch (const sentinel::Error&) {
  }
  return 0;
}
