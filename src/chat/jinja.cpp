// sentinel::jinja::Template: tokenize + parse once, render many times. See include/sentinel/chat/jinja.h.
#include "sentinel/chat/jinja.h"

#include "ast.h"
#include "evaluator.h"
#include "lexer.h"

namespace sentinel::jinja {

Template::Template(std::string_view source) : program_(std::make_unique<Program>(Program{parse(tokenize(source))})) {}

Template::~Template() = default;
Template::Template(Template&&) noexcept = default;
Template& Template::operator=(Template&&) noexcept = default;

std::string Template::render(const nlohmann::ordered_json& variables, const RenderOptions& options) const {
  Renderer renderer(options);
  return renderer.render(*program_, variables);
}

}  // namespace sentinel::jinja
