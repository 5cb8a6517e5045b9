// Parity with transformers on real models' chat templates: every template of tests/data/chat/templates/
// renders every conversation of tests/data/chat/expected.json byte for byte as transformers'
// render_jinja_template did (reference/make_chat_template_fixtures.py), or refuses it as transformers did;
// templates that mention tools also render a tools list and a tool call.
// A template we cannot render must be listed in kKnownUnsupported with the reason; none is skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "sentinel/core/error.h"
#include "sentinel/tokenizer/chat_template.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

constexpr const char* kRegenerate =
    "regenerate with: ~/.cache/sentinel/venv/bin/python reference/make_chat_template_fixtures.py "
    "--templates ~/.cache/sentinel/peers/llama.cpp/models/templates --out tests/data/chat";

// Templates the interpreter cannot render yet, and why. The test requires them to still fail, so
// that this list shrinks when support arrives.
struct KnownUnsupported {
  const char* name;
  const char* reason;
};
constexpr KnownUnsupported kKnownUnsupported[] = {
    {"", ""},  // (none)
};

const char* unsupported_reason(const std::string& name) {
  for (const auto& k : kKnownUnsupported)
    if (name == k.name) return k.reason;
  return nullptr;
}

// SENTINEL_CHAT_FIXTURES=<dir> runs the suite on another fixture folder, e.g. the one that
// `make_chat_template_fixtures.py --all --out <dir>` writes for every template llama.cpp ships.
std::string fixture_dir() {
  const char* dir = std::getenv("SENTINEL_CHAT_FIXTURES");
  return dir && *dir ? std::string(dir) : testing::source_path("tests/data/chat");
}

const nlohmann::ordered_json& fixture() {
  static const nlohmann::ordered_json json =
      nlohmann::ordered_json::parse(testing::read_file(fixture_dir() + "/expected.json"));
  return json;
}

std::vector<std::string> template_names() {
  std::vector<std::string> names;
  for (const auto& [name, entry] : fixture()["templates"].items()) names.push_back(name);
  return names;
}

std::tm fixture_now() {
  std::tm t{};
  const std::string iso = fixture()["now"].get<std::string>();  // 2025-03-14T09:26:53
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min, &t.tm_sec);
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  std::tm copy = t;
  std::mktime(&copy);  // fills tm_wday / tm_yday for %a, %A, %j
  t.tm_wday = copy.tm_wday;
  t.tm_yday = copy.tm_yday;
  return t;
}

std::vector<ChatMessage> messages_of(const nlohmann::ordered_json& list) {
  std::vector<ChatMessage> messages;
  for (const auto& m : list) messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  return messages;
}

// Where two renderings first differ, with some text of each around it.
std::string first_difference(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i > 60 ? i - 60 : 0;
  return "first difference at byte " + std::to_string(i) + "\n  ours:         ..." +
         nlohmann::json(got.substr(from, 140)).dump() + "\n  transformers: ..." +
         nlohmann::json(want.substr(from, 140)).dump();
}

std::string case_name(const nlohmann::ordered_json& c) {
  return c["conversation"].get<std::string>() + (c.contains("tools") ? " +tools" : "") +
         (c["add_generation_prompt"].get<bool>() ? " +gen" : "") +
         (c["kwargs"].empty() ? "" : " " + c["kwargs"].dump());
}

class ChatTemplateParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateParity, RendersLikeTransformers) {
  const std::string& name = GetParam();
  const auto& entry = fixture()["templates"][name];
  const std::string source = testing::read_file(fixture_dir() + "/templates/" + name + ".jinja");
  ChatSpecialTokens tokens;
  if (entry.contains("bos_token")) tokens.bos_token = entry["bos_token"].get<std::string>();
  if (entry.contains("eos_token")) tokens.eos_token = entry["eos_token"].get<std::string>();
  ASSERT_GE(entry["cases"].size(), 12u) << kRegenerate;

  if (const char* reason = unsupported_reason(name)) {
    EXPECT_THROW(render_chat_template(source, messages_of(fixture()["conversations"]["user_only"]), tokens), Error)
        << name << " is listed as unsupported (" << reason << ") but renders now: remove it from kKnownUnsupported";
    return;
  }
  const jinja::Template parsed(source);
  for (const auto& c : entry["cases"]) {
    ChatTemplateOptions options;
    options.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    options.extra_variables = c["kwargs"];
    options.render.now = fixture_now();
    const auto& conversation = fixture()["conversations"][c["conversation"].get<std::string>()];
    // Plain role/content conversations go through the public entry point; tool use (messages with
    // tool_calls, a tools list) through the interpreter with transformers' variables as JSON.
    auto render = [&]() {
      if (!c.contains("tools")) return render_chat_template(source, messages_of(conversation), tokens, options);
      nlohmann::ordered_json variables = {{"messages", conversation},
                                          {"tools", fixture()["tools"]},
                                          {"documents", nullptr},
                                          {"add_generation_prompt", true}};
      if (tokens.bos_token) variables["bos_token"] = *tokens.bos_token;
      if (tokens.eos_token) variables["eos_token"] = *tokens.eos_token;
      return parsed.render(variables, options.render);
    };
    if (c.contains("rendered")) {
      std::string rendered;
      try {
        rendered = render();
      } catch (const Error& e) {
        ADD_FAILURE() << name << " [" << case_name(c) << "]: " << e.what();
        continue;
      }
      const std::string want = c["rendered"].get<std::string>();
      EXPECT_TRUE(rendered == want) << name << " [" << case_name(c) << "]: " << first_difference(rendered, want);
    } else {
      // transformers refused this conversation; so must we, with the template's own message.
      try {
        render();
        ADD_FAILURE() << name << " [" << case_name(c) << "]: rendered, but transformers raised "
                      << c["error_type"].get<std::string>() << ": " << c["error"].get<std::string>();
      } catch (const Error& e) {
        if (c["error_type"] == "TemplateError")
          EXPECT_NE(std::string(e.what()).find(c["error"].get<std::string>()), std::string::npos)
              << name << " [" << case_name(c) << "]: " << e.what();
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(RealTemplates, ChatTemplateParity, ::testing::ValuesIn(template_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string id = info.param;
                           std::replace_if(
                               id.begin(), id.end(),
                               [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '_');
                           return id;
                         });

TEST(ChatTemplateParityFixture, CoversTheTemplatesOnDisk) {
  std::set<std::string> on_disk;
  for (const auto& file : std::filesystem::directory_iterator(fixture_dir() + "/templates"))
    on_disk.insert(file.path().stem().string());
  const auto names = template_names();
  EXPECT_EQ(on_disk, std::set<std::string>(names.begin(), names.end())) << kRegenerate;
  EXPECT_GE(names.size(), 30u) << kRegenerate;
  for (const auto& k : kKnownUnsupported)
    if (*k.name) EXPECT_TRUE(std::count(names.begin(), names.end(), k.name)) << k.name << " is not in the fixture";
}

}  // namespace
}  // namespace sentinel
