// The chat template interpreter on its own: each Jinja construct against transformers' Jinja
// environment (tests/data/chat/constructs.json, from reference/make_chat_template_fixtures.py),
// then what the fixture cannot show: error positions and messages, and the render bounds.
#include <gtest/gtest.h>

#include <cstdio>

#include "sentinel/chat/jinja.h"
#include "sentinel/core/error.h"
#include "support/test_paths.h"

namespace sentinel::jinja {
namespace {

const nlohmann::ordered_json& constructs() {
  static const nlohmann::ordered_json json =
      nlohmann::ordered_json::parse(testing::read_file(testing::source_path("tests/data/chat/constructs.json")));
  return json;
}

RenderOptions fixed_clock() {
  std::tm t{};
  const std::string iso = constructs()["now"].get<std::string>();  // 2025-03-14T09:26:53, a Friday
  std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d", &t.tm_year, &t.tm_mon, &t.tm_mday, &t.tm_hour, &t.tm_min, &t.tm_sec);
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  t.tm_wday = 5;
  t.tm_yday = 72;
  RenderOptions options;
  options.now = t;
  return options;
}

std::string render(std::string_view source, const nlohmann::ordered_json& variables = nlohmann::ordered_json::object(),
                   const RenderOptions& options = {}) {
  return Template(source).render(variables, options);
}

// The message of the Error that rendering (or parsing) `source` throws; "" if none.
std::string error_of(std::string_view source, const RenderOptions& options = {}) {
  try {
    render(source, nlohmann::ordered_json::object(), options);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Jinja, EachConstructRendersLikeTransformersJinja) {
  const auto& cases = constructs()["cases"];
  ASSERT_GE(cases.size(), 100u) << "regenerate with reference/make_chat_template_fixtures.py";
  const RenderOptions options = fixed_clock();
  int n_rendered = 0, n_refused = 0;
  for (const auto& c : cases) {
    const std::string source = c["template"].get<std::string>();
    if (c.contains("rendered")) {
      try {
        EXPECT_EQ(render(source, c["variables"], options), c["rendered"].get<std::string>()) << source;
        ++n_rendered;
      } catch (const Error& e) {
        ADD_FAILURE() << source << "\n  threw: " << e.what();
      }
    } else {
      EXPECT_THROW(render(source, c["variables"], options), Error)
          << source << "\n  transformers raised " << c["error_type"].get<std::string>() << ": "
          << c["error"].get<std::string>();
      ++n_refused;
    }
  }
  EXPECT_GE(n_rendered, 80);
  EXPECT_GE(n_refused, 30);
}

TEST(Jinja, ErrorsSayWhereAndWhat) {
  EXPECT_EQ(error_of("line one\n  {{ 1 + 'a' }}"),
            "chat template line 2, column 8: unsupported operand type(s) for +: 'int' and 'str'");
  EXPECT_EQ(error_of("{{ messages[0].content }}"), "chat template line 1, column 4: 'messages' is undefined");
  EXPECT_EQ(error_of("{{ message.content.strip() }}"), "chat template line 1, column 4: 'message' is undefined");
  EXPECT_EQ(error_of("{% set m = {} %}{{ m.content.strip() }}"),
            "chat template line 1, column 21: 'dict object' has no attribute 'content'");
  EXPECT_EQ(error_of("{% for m in none %}{% endfor %}"),
            "chat template line 1, column 4: 'NoneType' object is not iterable");
  EXPECT_EQ(error_of("{{ x|from_json }}"),
            "chat template line 1, column 6: no filter named 'from_json' (neither Jinja nor transformers defines it)");
  EXPECT_EQ(error_of("{{ x|wordwrap }}"),
            "chat template line 1, column 6: the Jinja filter 'wordwrap' is not supported by this interpreter");
  EXPECT_EQ(error_of("ok\n\n   {% include 'other.jinja' %}"),
            "chat template line 3, column 7: the 'include' tag is not supported in chat templates");
  EXPECT_EQ(error_of("{% if x %}\n  never closed"),
            "chat template line 1, column 4: the 'if' tag is never closed (expected '{% endif %}')");
  EXPECT_EQ(error_of("{{ (1 + 2 }}"), "chat template line 1, column 11: unexpected '}', expected ')'");
  EXPECT_EQ(error_of("{{ 'unterminated }}"), "chat template line 1, column 4: unterminated string literal");
  EXPECT_EQ(error_of("{# no end"), "chat template line 1, column 1: missing end of comment tag '#}'");
  EXPECT_EQ(error_of("{% set ns = 1 %}{% set ns.a = 2 %}"),
            "chat template line 1, column 20: cannot assign attribute 'a' on 'ns': it is not a namespace() (int)");
  EXPECT_EQ(error_of("{{ [1, 2].append(3) }}"),
            "chat template line 1, column 17: access to attribute 'append' of 'list' object is unsafe: chat templates "
            "cannot modify values (transformers renders them in an immutable sandbox)");
}

TEST(Jinja, RaiseExceptionCarriesTheTemplatesMessage) {
  EXPECT_EQ(error_of("{%- if true %}\n  {{- raise_exception('Conversation roles must alternate') }}{% endif %}"),
            "chat template raised an error at line 2, column 22: Conversation roles must alternate");
}

TEST(Jinja, WhitespaceControlFollowsTransformersSettings) {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before one goes.
  EXPECT_EQ(render("{% for i in [1, 2] %}\n  {% if i %}\n    <{{ i }}>\n  {% endif %}\n{% endfor %}"),
            "    <1>\n    <2>\n");
  // {{ }} is not a block: no trimming after it, and no lstrip before it.
  EXPECT_EQ(render("  {{ 'a' }}\n  {{ 'b' }}\n"), "  a\n  b");
  // '-' strips all whitespace on its side, newlines included; '+' keeps the indentation.
  EXPECT_EQ(render("a  \n\n  {{- 'b' -}}  \n\n  c"), "abc");
  EXPECT_EQ(render("x\n    {%+ if true %}y{% endif %}"), "x\n    y");
  // One trailing newline of the template is dropped (keep_trailing_newline=False); \r\n becomes \n.
  EXPECT_EQ(render("a\r\nb\n\n"), "a\nb\n");
}

TEST(Jinja, StrftimeNowReadsTheInjectedClock) {
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') }}", nlohmann::ordered_json::object(), fixed_clock()), "14 Mar 2025");
  EXPECT_EQ(render("{{ strftime_now('%Y') | length }}"), "4");  // the real clock when none is injected
}

TEST(Jinja, TemplatesAreParsedOnceAndRenderedMany) {
  const Template t("{% for m in messages %}{{ m.role }}:{{ m.content | trim }};{% endfor %}");
  const nlohmann::ordered_json a = {{"messages", {{{"role", "user"}, {"content", " hi "}}}}};
  const nlohmann::ordered_json b = {
      {"messages", {{{"role", "system"}, {"content", "x"}}, {{"role", "user"}, {"content", "y"}}}}};
  EXPECT_EQ(t.render(a), "user:hi;");
  EXPECT_EQ(t.render(b), "system:x;user:y;");
  EXPECT_EQ(t.render(a), "user:hi;");
  EXPECT_THROW(t.render(nlohmann::ordered_json::array()), Error);  // variables must be an object
}

TEST(Jinja, VariablesKeepJsonOrderAndTypes) {
  const nlohmann::ordered_json vars = nlohmann::ordered_json::parse(
      R"({"d": {"z": 1, "a": [true, null, 2.5, "s"]}, "n": null, "big": 9007199254740993})");
  EXPECT_EQ(
      render("{{ d }} {{ d | tojson }} {{ n is none }} {{ m is defined }} {{ big + 1 }}", vars),
      "{'z': 1, 'a': [True, None, 2.5, 's']} {\"z\": 1, \"a\": [true, null, 2.5, \"s\"]} True False 9007199254740994");
}

// ---- bounds: a hostile template ends with an Error, quickly and in bounded memory ----

TEST(JinjaLimits, StepsBoundLoops) {
  RenderOptions options;
  options.limits.max_steps = 100'000;
  const std::string message =
      error_of("{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}", options);
  EXPECT_NE(message.find("RenderLimits::max_steps"), std::string::npos) << message;
}

// Work proportional to the data counts as steps too, so loops over big values stop (in about a
// second) with the default limits instead of running for hours.
TEST(JinjaLimits, StepsCountTheWorkOnBigValues) {
  for (const char* hostile : {
           "{% set s = 'x' * 50000000 %}{% for i in range(100000) %}{% set t = s ~ '' %}{% endfor %}",
           "{% set l = range(100000) | list %}{% for i in range(100000) %}{% if -1 in l %}{% endif %}{% endfor %}",
           "{% set s = 'x' * 50000000 %}{% for i in range(100000) %}{{ s[i] }}{% endfor %}",
           "{% set l = (range(100000) | list) * 10 %}{% for i in range(100000) %}{% for x in l %}{% break %}{% endfor "
           "%}"
           "{% endfor %}",
       }) {
    const std::string message = error_of(hostile);
    EXPECT_NE(message.find("RenderLimits::max_steps"), std::string::npos) << hostile << "\n" << message;
  }
}

TEST(JinjaLimits, OutputAndStringsAreBounded) {
  RenderOptions options;
  options.limits.max_output_bytes = 1 << 20;
  EXPECT_NE(error_of("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxx' }}{% endfor %}", options)
                .find("RenderLimits::max_output_bytes"),
            std::string::npos);
  EXPECT_NE(error_of("{{ 'x' * 1000000000 }}", options).find("max_output_bytes"), std::string::npos);
  EXPECT_NE(error_of("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                     options)
                .find("max_output_bytes"),
            std::string::npos);
  EXPECT_NE(error_of("{{ [1] * 100000000 }}").find("RenderLimits::max_list_items"), std::string::npos);
  EXPECT_NE(error_of("{{ range(1000000) }}").find("at most 100000"), std::string::npos);
}

TEST(JinjaLimits, RecursionAndNestingAreBounded) {
  EXPECT_NE(error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}").find("RenderLimits::max_call_depth"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}").find("nested deeper than"),
            std::string::npos);
  EXPECT_NE(error_of("{{ " + std::string(300, '[')).find("chat template"), std::string::npos);  // unclosed, no crash
  std::string deep_ifs;
  for (int i = 0; i < 200; ++i) deep_ifs += "{% if true %}";
  EXPECT_NE(error_of(deep_ifs).find("nested deeper than"), std::string::npos);
  // A namespace that contains itself prints as far as the depth bound, then stops.
  EXPECT_NE(error_of("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}").find("nests deeper"), std::string::npos);
}

}  // namespace
}  // namespace sentinel::jinja
