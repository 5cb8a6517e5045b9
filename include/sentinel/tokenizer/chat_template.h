// Chat prompts: renders a conversation the way the model's Jinja chat template does, for the two
// template families we recognise (ChatML, Llama-3 headers). Not a Jinja interpreter: a template
// of another shape throws Error instead of being rendered approximately.
#pragma once

#include <string>
#include <vector>

#include "sentinel/tokenizer/bpe.h"

namespace sentinel {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool", ...
  std::string content;
};

enum class ChatTemplateStyle {
  // <|im_start|>role\ncontent<|im_end|>\n ...; generation prompt <|im_start|>assistant\n. When the
  // template holds a complete default system turn ('<|im_start|>system\n...<|im_end|>\n', as
  // SmolLM2's and Qwen2's do), it is inserted before a conversation that does not open with one.
  ChatMl,
  // [bos]<|start_header_id|>role<|end_header_id|>\n\n{content | trim}<|eot_id|> ...; generation
  // prompt <|start_header_id|>assistant<|end_header_id|>\n\n (Meta Llama-3 8B Instruct).
  Llama3,
};

struct ChatTemplateInfo {
  ChatTemplateStyle style = ChatTemplateStyle::ChatMl;
  std::string default_system_turn;  // ChatML: the whole default system turn, empty if none
  bool starts_with_bos = false;     // Llama3: the template prepends bos_token
};

// Recognises the template text; throws Error for an empty or unrecognised template, and for
// Llama-3.1+ templates (their date and tool preamble is not implemented).
ChatTemplateInfo recognise_chat_template(const std::string& chat_template);

// The prompt text for `messages` (at least one). It may contain the BOS token's text when the
// template writes it (Llama-3): encode it with add_bos=false then, or BOS appears twice, as it
// would with transformers. Throws Error if the tokenizer has no chat template or it is not
// recognised.
std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt = true);

}  // namespace sentinel
