// Reading a JSON file (tokenizer.json, config.json, ...) with one error model: a missing or
// unparsable file throws sentinel::Error naming it. Not a schema checker: callers check fields.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace sentinel {

// The parsed file. Throws Error "cannot open 'PATH'" or "'PATH' is not valid JSON: ...".
nlohmann::json read_json_file(const std::string& path);

}  // namespace sentinel
