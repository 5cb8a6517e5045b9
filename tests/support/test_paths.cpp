// Implementation of the test path helpers; the roots come from CMake compile definitions.
#include "support/test_paths.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/core/paths.h"

namespace sentinel::testing {

std::string source_path(const std::string& relative) { return std::string(SENTINEL_SOURCE_DIR) + "/" + relative; }

std::string shared_data_path(const std::string& relative) {
  const char* env = std::getenv("SENTINEL_SHARED_DATA");
  std::string root = (env != nullptr && *env != '\0') ? env : SENTINEL_SHARED_DATA;
  std::string path = root + "/" + relative;
  check(std::filesystem::exists(path), "shared corpus file '", path,
        "' is missing; set SENTINEL_SHARED_DATA to the folder holding wikitext-2-raw/ and gutenberg/");
  return path;
}

std::string default_model() { return default_model_path(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read '", path, "'");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string cli_path() {
  std::string path = SENTINEL_CLI_PATH;
  check(!path.empty(), "the sentinel CLI was not built (SENTINEL_WITH_TORCH=OFF)");
  return path;
}

}  // namespace sentinel::testing
