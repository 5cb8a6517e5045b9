// read_json_file: the whole file read, then parsed, so a parse error can name the file.
#include "sentinel/core/json_file.h"

#include <fstream>
#include <sstream>

#include "sentinel/core/error.h"

namespace sentinel {

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "'");
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    fail("'", path, "' is not valid JSON: ", e.what());
  }
}

}  // namespace sentinel
