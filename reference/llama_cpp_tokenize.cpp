// Reference helper for reference/make_spm_fixtures.py: llama.cpp's own tokenizer (libllama from the
// llama-cpp-python==0.3.36 sdist that bench/peers/build_llama_cpp.sh builds) on many inputs in one
// process. Not part of the build and not a test; the fixture script compiles it with g++.
//
//   llama_cpp_tokenize encode MODEL.gguf < records > lines   (record: u32 length + bytes)
//   llama_cpp_tokenize decode MODEL.gguf < records > lines   (record: u32 count + count x i32 ids)
//
// encode prints one JSON object a record: {"plain": ids with add_special=false parse_special=false,
// "special": ids with add_special=true parse_special=true}. decode prints {"text": hex of
// llama_detokenize(remove_special=false, unparse_special=true), "skip": hex of
// llama_detokenize(remove_special=true, unparse_special=false)}. Little-endian host assumed.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "llama.h"

namespace {

bool read_exact(void* data, size_t n) { return std::fread(data, 1, n, stdin) == n; }

std::vector<llama_token> tokenize(const llama_vocab* vocab, const std::string& text, bool add_special,
                                  bool parse_special) {
  std::vector<llama_token> ids(text.size() + 8);
  int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                             static_cast<int32_t>(ids.size()), add_special, parse_special);
  if (n < 0) {
    ids.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), ids.data(),
                       static_cast<int32_t>(ids.size()), add_special, parse_special);
  }
  ids.resize(static_cast<size_t>(n));
  return ids;
}

std::string detokenize(const llama_vocab* vocab, const std::vector<llama_token>& ids, bool remove_special,
                       bool unparse_special) {
  std::string text(ids.size() * 16 + 16, '\0');
  int32_t n = llama_detokenize(vocab, ids.data(), static_cast<int32_t>(ids.size()), text.data(),
                               static_cast<int32_t>(text.size()), remove_special, unparse_special);
  if (n < 0) {
    text.resize(static_cast<size_t>(-n));
    n = llama_detokenize(vocab, ids.data(), static_cast<int32_t>(ids.size()), text.data(),
                         static_cast<int32_t>(text.size()), remove_special, unparse_special);
  }
  text.resize(static_cast<size_t>(n));
  return text;
}

void print_ids(const std::vector<llama_token>& ids) {
  std::printf("[");
  for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? ",%d" : "%d", ids[i]);
  std::printf("]");
}

void print_hex(const std::string& bytes) {
  std::printf("\"");
  for (unsigned char c : bytes) std::printf("%02x", c);
  std::printf("\"");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "encode" && std::string(argv[1]) != "decode")) {
    std::fprintf(stderr, "usage: %s encode|decode MODEL.gguf < records\n", argv[0]);
    return 2;
  }
  const bool encode = std::string(argv[1]) == "encode";
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_backend_init();
  llama_model_params params = llama_model_default_params();
  params.vocab_only = true;
  llama_model* model = llama_model_load_from_file(argv[2], params);
  if (model == nullptr) {
    std::fprintf(stderr, "cannot load %s\n", argv[2]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  uint32_t n = 0;
  while (read_exact(&n, 4)) {
    if (encode) {
      std::string text(n, '\0');
      if (n > 0 && !read_exact(text.data(), n)) return 1;
      std::printf("{\"plain\":");
      print_ids(tokenize(vocab, text, false, false));
      std::printf(",\"special\":");
      print_ids(tokenize(vocab, text, true, true));
      std::printf("}\n");
    } else {
      std::vector<llama_token> ids(n);
      if (n > 0 && !read_exact(ids.data(), n * sizeof(llama_token))) return 1;
      std::printf("{\"text\":");
      print_hex(detokenize(vocab, ids, false, true));
      std::printf(",\"skip\":");
      print_hex(detokenize(vocab, ids, true, false));
      std::printf("}\n");
    }
  }
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
