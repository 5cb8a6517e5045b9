// libFuzzer target: the server's request path before anything is queued (server/request.h) on
// hostile bodies: JSON parsing, the validation of every field as a chat and as a completion body,
// the compression object, and the prompt's preparation (chat template rendering, tokenization,
// marked spans) with a real tokenizer and a real ChatML template from tests/data. sentinel::Error
// is the expected outcome for a bad body; anything else (a crash, a sanitizer report, nlohmann's
// own exceptions escaping) is a bug.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

#include "sentinel/core/error.h"
#include "sentinel/server/request.h"
#include "sentinel/tokenizer/bpe.h"

namespace {

const sentinel::Tokenizer& tokenizer() {
  static const sentinel::Tokenizer t = [] {
    sentinel::Tokenizer loaded = sentinel::Tokenizer::from_json_file(SENTINEL_SOURCE_DIR "/tests/data/tiny/hf/tokenizer.json");
    std::ifstream in(SENTINEL_SOURCE_DIR "/tests/data/chat/templates/Qwen-Qwen2.5-7B-Instruct.jinja");
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str().empty()) __builtin_trap();  // the fixture must be there
    loaded.set_chat_template(text.str());
    return loaded;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sentinel::server;
  const sentinel::Tokenizer& t = tokenizer();
  ServerDefaults defaults;
  defaults.n_ctx = 4096;
  const auto cl = static_cast<int32_t>(t.n_vocab()), cr = cl + 1;
  nlohmann::json body;
  try {
    body = parse_json_body(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const sentinel::Error&) {
    return 0;
  }
  for (const Endpoint endpoint : {Endpoint::Chat, Endpoint::Completion}) {
    try {
      const GenerationRequest request = parse_generation_request(endpoint, body, defaults);
      const PreparedPrompt prompt = prepare_prompt(request, t, defaults, cl, cr);
      if (prompt.tokens.empty() || prompt.cache_boundary > static_cast<int64_t>(prompt.tokens.size())) __builtin_trap();
    } catch (const sentinel::Error&) {
    }
  }
  return 0;
}
