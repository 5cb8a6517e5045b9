// Chat templates rendered by the Jinja interpreter with transformers' variables; checked against
// transformers on real models' templates (tests/data/chat/) and on the tiny tokenizers'
// (tests/data/tokenizer/chat_templates.json).
#include "sentinel/tokenizer/chat_template.h"

#include <list>
#include <memory>
#include <mutex>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

// The server renders one template many times per request: keep the last few parsed.
std::shared_ptr<const jinja::Template> parsed(const std::string& text) {
  constexpr size_t kCacheSize = 4;
  static std::mutex mutex;
  static std::list<std::pair<std::string, std::shared_ptr<const jinja::Template>>> cache;  // most recent first
  {
    const std::lock_guard<std::mutex> lock(mutex);
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->first != text) continue;
      cache.splice(cache.begin(), cache, it);
      return it->second;
    }
  }
  auto parsed_template = std::make_shared<const jinja::Template>(text);  // outside the lock: may throw
  const std::lock_guard<std::mutex> lock(mutex);
  cache.emplace_front(text, parsed_template);
  if (cache.size() > kCacheSize) cache.pop_back();
  return parsed_template;
}

}  // namespace

std::string render_chat_template(const std::string& chat_template, const std::vector<ChatMessage>& messages,
                                 const ChatSpecialTokens& tokens, const ChatTemplateOptions& options) {
  check(!chat_template.empty(), "the model has no chat template; give one with --chat-template-file (a Jinja ",
        "file), format the prompt yourself, or load a model whose tokenizer has one");
  check(!messages.empty(), "cannot apply a chat template to an empty conversation; give at least one message");
  check(options.extra_variables.is_object(), "chat template extra variables must be a JSON object, got ",
        options.extra_variables.type_name());
  nlohmann::ordered_json variables = nlohmann::ordered_json::object();
  if (tokens.bos_token) variables["bos_token"] = *tokens.bos_token;
  if (tokens.eos_token) variables["eos_token"] = *tokens.eos_token;
  nlohmann::ordered_json& list = variables["messages"] = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  variables["tools"] = nullptr;  // transformers passes tools=None and documents=None explicitly
  variables["documents"] = nullptr;
  variables["add_generation_prompt"] = options.add_generation_prompt;
  for (const auto& [name, value] : options.extra_variables.items()) variables[name] = value;
  return parsed(chat_template)->render(variables, options.render);
}

std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                const ChatTemplateOptions& options) {
  ChatSpecialTokens tokens;
  if (const auto bos = tokenizer.bos_id()) tokens.bos_token = tokenizer.token_bytes(*bos);
  if (const auto eos = tokenizer.eos_id()) tokens.eos_token = tokenizer.token_bytes(*eos);
  return render_chat_template(tokenizer.chat_template(), messages, tokens, options);
}

std::string apply_chat_template(const Tokenizer& tokenizer, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
  ChatTemplateOptions options;
  options.add_generation_prompt = add_generation_prompt;
  return apply_chat_template(tokenizer, messages, options);
}

bool chat_prompt_needs_bos(const Tokenizer& tokenizer, std::string_view rendered) {
  const auto bos = tokenizer.bos_id();
  if (!bos || !tokenizer.add_bos()) return false;
  const std::string bos_text = tokenizer.token_bytes(*bos);
  return rendered.substr(0, bos_text.size()) != bos_text;
}

}  // namespace sentinel
