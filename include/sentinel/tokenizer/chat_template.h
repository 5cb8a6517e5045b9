// Chat prompts: renders a conversation with the model's own Jinja chat template
// (tokenizer.chat_template in GGUF metadata or tokenizer_config.json), as transformers'
// apply_chat_template does, through the interpreter of sentinel/chat/jinja.h. Not a tokenizer:
// the result is text, to be encoded with add_bos=false when the template writes BOS itself.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sentinel/chat/jinja.h"
#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", "tool", ...
  std::string content;
};

struct ChatTemplateOptions {
  // Append the opening of the assistant's turn (what the model should continue from).
  bool add_generation_prompt = true;
  // Extra template variables, like apply_chat_template(**kwargs): {"enable_thinking": false} for
  // Qwen3, {"date_string": "26 Jul 2024"} for Llama 3.1. They override the defaults below.
  nlohmann::ordered_json extra_variables = nlohmann::ordered_json::object();
  // Bounds and the strftime_now() clock (inject it for reproducible dates).
  jinja::RenderOptions render;
};

// The special-token texts a template sees as bos_token / eos_token; unset: the variable is
// undefined, as with transformers for a tokenizer without that token.
struct ChatSpecialTokens {
  std::optional<std::string> bos_token, eos_token;
};

// Renders `chat_template` over `messages` with the variables transformers passes: messages,
// add_generation_prompt, bos_token, eos_token, tools = None, documents = None, then
// options.extra_variables. Parsed templates are cached (the last few distinct texts).
// Throws Error for an empty template or conversation, a template that does not parse, and
// raise_exception() in the template ("chat template raised an error at line L, column C: ...").
std::string render_chat_template(const std::string& chat_template, const std::vector<ChatMessage>& messages,
                                 const ChatSpecialTokens& tokens, const ChatTemplateOptions& options = {});

// The prompt text for `messages` (at least one) with the tokenizer's chat template and its BOS /
// EOS texts. The text may start with the BOS token's text when the template writes it (Llama 3):
// encode with add_bos=false then, or BOS appears twice, as it would with transformers. Throws
// Error if the tokenizer has no chat template, and as render_chat_template does.
std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt = true);
std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                const ChatTemplateOptions& options);

// Whether a rendered chat prompt still needs the tokenizer's BOS: the tokenizer adds one and the
// template did not write it itself (Llama 3's and Gemma's do). One BOS either way, as llama.cpp's
// server sends it; transformers' apply_chat_template(tokenize=True) adds none of its own.
bool chat_prompt_needs_bos(const Tokenizer& tokenizer, std::string_view rendered);

}  // namespace sentinel
