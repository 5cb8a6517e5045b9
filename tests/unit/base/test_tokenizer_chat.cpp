// Chat templates through the tokenizer: the tiny tokenizers' templates (SmolLM2's ChatML with its
// default system turn, Llama-3's with BOS) against transformers' apply_chat_template (fixture),
// the options (generation prompt, extra variables, clock), and the errors. Real models' templates:
// test_chat_parity.cpp; the interpreter itself: test_jinja.cpp.
#include <gtest/gtest.h>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/chat_template.h"
#include "support/tokenizer_fixtures.h"

namespace sentinel {
namespace {

std::vector<ChatMessage> messages_of(const nlohmann::json& list) {
  std::vector<ChatMessage> messages;
  for (const auto& m : list) messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return messages;
}

Tokenizer tiny(const std::string& name) {
  return Tokenizer::from_json_file(testing::source_path("tests/data/tokenizer/" + name + "/tokenizer.json"));
}

TEST(TokenizerChat, RendersLikeTransformersJinja) {
  const auto fixture = testing::read_tokenizer_fixture("chat_templates.json");
  ASSERT_GE(fixture["cases"].size(), 10u) << testing::kRegenerateTokenizerFixtures;
  for (const auto& entry : fixture["cases"]) {
    const std::string name = entry["tokenizer"].get<std::string>();
    const std::string rendered =
        apply_chat_template(tiny(name), messages_of(entry["messages"]), entry["add_generation_prompt"].get<bool>());
    EXPECT_EQ(rendered, entry["rendered"].get<std::string>()) << name << " messages " << entry["messages"].dump();
  }
}

TEST(TokenizerChat, TheTemplateWritesBosFromTheTokenizer) {
  const std::string rendered = apply_chat_template(tiny("tiny-llama3"), {{"user", "Hi"}});
  EXPECT_EQ(rendered.rfind("<|begin_of_text|><|start_header_id|>user", 0), 0u) << rendered;
}

TEST(TokenizerChat, OptionsReachTheTemplate) {
  const std::string tpl =
      "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}"
      "{% if add_generation_prompt %}[assistant]{% if enable_thinking is defined and not enable_thinking %}"
      "<think></think>{% endif %}{% endif %}|{{ tools }}|{{ strftime_now('%Y-%m-%d') }}|{{ eos_token is defined }}";
  ChatTemplateOptions options;
  options.extra_variables = {{"enable_thinking", false}};
  std::tm now{};
  now.tm_year = 124;
  now.tm_mon = 6;
  now.tm_mday = 26;
  options.render.now = now;
  EXPECT_EQ(render_chat_template(tpl, {{"user", "Hi"}}, {"<s>", std::nullopt}, options),
            "<s>[user]Hi[assistant]<think></think>|None|2024-07-26|False");
  options.add_generation_prompt = false;
  options.extra_variables = {{"bos_token", "<override>"}};
  EXPECT_EQ(render_chat_template(tpl, {{"user", "Hi"}}, {"<s>", "</s>"}, options),
            "<override>[user]Hi|None|2024-07-26|True");
}

TEST(TokenizerChat, RefusesEmptyTemplatesAndConversations) {
  EXPECT_THROW(render_chat_template("", {{"user", "Hi"}}, {}), Error);
  EXPECT_THROW(apply_chat_template(tiny("tiny-smollm"), {}), Error);
  EXPECT_THROW(render_chat_template("{% if %}", {{"user", "Hi"}}, {}), Error);
  try {
    render_chat_template(
        "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
        {{"system", "x"}}, {});
    ADD_FAILURE() << "raise_exception did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("System role not supported"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sentinel
