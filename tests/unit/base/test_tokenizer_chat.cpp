// Chat templates: ChatML (SmolLM2's, with its default system turn) and Llama-3 against
// transformers' Jinja rendering (fixture), and the errors for templates we do not recognise.
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

TEST(TokenizerChat, RendersLikeTransformersJinja) {
  const auto fixture = testing::read_tokenizer_fixture("chat_templates.json");
  ASSERT_GE(fixture["cases"].size(), 10u) << testing::kRegenerateTokenizerFixtures;
  for (const auto& entry : fixture["cases"]) {
    const std::string name = entry["tokenizer"].get<std::string>();
    const Tokenizer tokenizer =
        Tokenizer::from_json_file(testing::source_path("tests/data/tokenizer/" + name + "/tokenizer.json"));
    const std::string rendered =
        apply_chat_template(tokenizer, messages_of(entry["messages"]), entry["add_generation_prompt"].get<bool>());
    EXPECT_EQ(rendered, entry["rendered"].get<std::string>()) << name << " messages " << entry["messages"].dump();
  }
}

TEST(TokenizerChat, TakesTheDefaultSystemTurnFromTheTemplate) {
  const auto info = recognise_chat_template(
      "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}{% endif %}"
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
      "'<|im_end|>' + '\\n'}}{% endfor %}");
  EXPECT_EQ(info.style, ChatTemplateStyle::ChatMl);
  EXPECT_EQ(info.default_system_turn, "<|im_start|>system\nBe brief.<|im_end|>\n");
}

TEST(TokenizerChat, RefusesUnknownEmptyAndLlama31Templates) {
  EXPECT_THROW(recognise_chat_template(""), Error);
  EXPECT_THROW(recognise_chat_template("{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"), Error);
  EXPECT_THROW(recognise_chat_template("<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: "
                                       "December 2023"),
               Error);
  const Tokenizer tokenizer =
      Tokenizer::from_json_file(testing::source_path("tests/data/tokenizer/tiny-smollm/tokenizer.json"));
  EXPECT_THROW(apply_chat_template(tokenizer, {}), Error);
}

}  // namespace
}  // namespace sentinel
