// Helpers for the tokenizer tests: reading the fixtures that reference/make_tokenizer_fixtures.py
// writes under tests/data/tokenizer/, and comparing id lists with a readable failure message.
// Header-only so both the unit and the model suites can use it. Not a fixture writer.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/core/sha256.h"
#include "support/test_paths.h"

namespace sentinel::testing {

inline const char* kRegenerateTokenizerFixtures =
    "regenerate with: python3 reference/make_tokenizer_fixtures.py --gguf "
    "~/.cache/sentinel/models/SmolLM2-135M-Instruct.Q4_1.gguf --wikitext ../shared/data/wikitext-2-raw "
    "--out tests/data/tokenizer";

inline nlohmann::json read_tokenizer_fixture(const std::string& name) {
  return nlohmann::json::parse(read_file(source_path("tests/data/tokenizer/" + name)));
}

inline std::string base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) continue;  // '=' padding
    buffer = (buffer << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

// A fixture case's input: "text" as is, or "text_base64" for raw (possibly invalid UTF-8) bytes.
inline std::string case_input(const nlohmann::json& entry) {
  if (entry.contains("text_base64")) return base64_decode(entry["text_base64"].get<std::string>());
  return entry["text"].get<std::string>();
}

// SHA-256 of ids as little-endian int32, the fixtures' hash of an id sequence.
inline std::string ids_sha256(const std::vector<int32_t>& ids) {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int shift = 0; shift < 32; shift += 8) bytes.push_back(static_cast<char>((u >> shift) & 0xFF));
  }
  return sha256_bytes(bytes);
}

inline std::string format_ids(const std::vector<int32_t>& ids, size_t max_items = 64) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < ids.size() && i < max_items; ++i) out << (i ? ", " : "") << ids[i];
  if (ids.size() > max_items) out << ", ... (" << ids.size() << " ids)";
  out << "]";
  return out.str();
}

// Empty if `ours` equals `expected` (a list of ids, or {"n_tokens", "sha256"} for long lists);
// otherwise both sides and the first differing position.
inline std::string compare_ids(const std::vector<int32_t>& ours, const nlohmann::json& expected) {
  if (expected.is_object()) {
    const auto n = expected["n_tokens"].get<size_t>();
    const auto hash = expected["sha256"].get<std::string>();
    if (ours.size() == n && ids_sha256(ours) == hash) return "";
    std::ostringstream out;
    out << "ours: " << ours.size() << " ids, sha256 " << ids_sha256(ours) << " " << format_ids(ours, 32)
        << "\nexpected: " << n << " ids, sha256 " << hash;
    return out.str();
  }
  const auto want = expected.get<std::vector<int32_t>>();
  if (ours == want) return "";
  size_t first = 0;
  while (first < ours.size() && first < want.size() && ours[first] == want[first]) ++first;
  std::ostringstream out;
  out << "first difference at index " << first << "\nours:     " << format_ids(ours)
      << "\nexpected: " << format_ids(want);
  return out.str();
}

// Printable form of a test string: control and non-ASCII bytes escaped, long text cut.
inline std::string printable(std::string_view text, size_t max_bytes = 160) {
  std::string out;
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\x%02X", c);
      out += buffer;
    }
  }
  if (text.size() > max_bytes) out += "...(" + std::to_string(text.size()) + " bytes)";
  return out;
}

}  // namespace sentinel::testing
