// Chat template recognition and rendering for ChatML and Llama-3; checked against transformers'
// Jinja rendering in tests/data/tokenizer/chat_templates.json.
#include "sentinel/tokenizer/chat_template.h"

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/unicode.h"

namespace sentinel {
namespace {

// The string literals of a Jinja template ('...' or "..."), with Jinja's escapes resolved.
std::vector<std::string> string_literals(const std::string& text) {
  std::vector<std::string> literals;
  for (size_t i = 0; i < text.size(); ++i) {
    const char quote = text[i];
    if (quote != '\'' && quote != '"') continue;
    std::string literal;
    size_t k = i + 1;
    for (; k < text.size() && text[k] != quote; ++k) {
      if (text[k] == '\\' && k + 1 < text.size()) {
        const char e = text[++k];
        literal += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
      } else {
        literal += text[k];
      }
    }
    literals.push_back(std::move(literal));
    i = k;
  }
  return literals;
}

// Jinja's |trim: Python's str.strip().
std::string python_strip(const std::string& text) {
  const std::u32string chars = unicode::decode_utf8(text);
  size_t begin = 0, end = chars.size();
  while (begin < end && unicode::is_python_space(chars[begin])) ++begin;
  while (end > begin && unicode::is_python_space(chars[end - 1])) --end;
  std::string out;
  for (size_t i = begin; i < end; ++i) unicode::append_utf8(out, chars[i]);
  return out;
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

}  // namespace

ChatTemplateInfo recognise_chat_template(const std::string& chat_template) {
  check(!chat_template.empty(), "the model has no chat template; format the prompt yourself or load a model ",
        "whose tokenizer has one");
  ChatTemplateInfo info;
  if (contains(chat_template, "<|im_start|>") && contains(chat_template, "<|im_end|>")) {
    info.style = ChatTemplateStyle::ChatMl;
    for (const std::string& literal : string_literals(chat_template)) {
      if (literal.rfind("<|im_start|>system\n", 0) == 0 && contains(literal, "<|im_end|>")) {
        info.default_system_turn = literal;
        break;
      }
    }
    return info;
  }
  if (contains(chat_template, "<|start_header_id|>") && contains(chat_template, "<|end_header_id|>")) {
    check(!contains(chat_template, "Cutting Knowledge Date"), "Llama-3.1+ chat templates (with a date and tool ",
          "preamble) are not supported; only the Llama-3 header template is");
    info.style = ChatTemplateStyle::Llama3;
    info.starts_with_bos = contains(chat_template, "bos_token");
    return info;
  }
  fail("the chat template is not recognised (supported: ChatML with <|im_start|>/<|im_end|>, Llama-3 with ",
       "<|start_header_id|>); it begins: ", chat_template.substr(0, 120));
}

std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  const ChatTemplateInfo info = recognise_chat_template(tokenizer.chat_template());
  check(!messages.empty(), "cannot apply a chat template to an empty conversation; give at least one message");
  std::string out;
  switch (info.style) {
    case ChatTemplateStyle::ChatMl:
      if (messages.front().role != "system") out += info.default_system_turn;
      for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      return out;
    case ChatTemplateStyle::Llama3:
      if (info.starts_with_bos) {
        check(tokenizer.bos_id().has_value(), "the chat template writes bos_token but the tokenizer has no BOS");
        out += tokenizer.token_text(*tokenizer.bos_id());
      }
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + python_strip(m.content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      return out;
  }
  return out;
}

}  // namespace sentinel
