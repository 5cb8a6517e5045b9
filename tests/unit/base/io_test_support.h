// Helpers shared by the file-format tests (test_gguf, test_dequant, test_safetensors): fixture
// bytes and JSON from tests/data/io/, and an assertion that a call throws sentinel::Error with a
// given phrase. Fixtures come from reference/make_io_fixtures.py.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "sentinel/core/error.h"
#include "support/test_paths.h"

namespace sentinel::testing {

inline std::string io_fixture_path(const std::string& name) { return source_path("tests/data/io/" + name); }

// The whole fixture file as bytes (std::string storage; see bytes_of).
inline std::string read_io_fixture(const std::string& name) { return read_file(io_fixture_path(name)); }

inline std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline nlohmann::json read_io_json(const std::string& name) { return nlohmann::json::parse(read_io_fixture(name)); }

// Runs f, which must throw sentinel::Error whose message contains `phrase`. Any other exception
// escapes and fails the test: the readers promise sentinel::Error and nothing else.
template <typename F>
void expect_error_containing(F&& f, const std::string& phrase) {
  try {
    f();
    ADD_FAILURE() << "no sentinel::Error thrown; expected one containing \"" << phrase << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos)
        << "message \"" << e.what() << "\" lacks \"" << phrase << "\"";
  }
}

}  // namespace sentinel::testing
