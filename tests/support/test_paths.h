// Paths the tests read: fixtures in the repository, the shared corpora, the installed model.
// A test that needs a file which is not there fails with a message saying how to get it.
#pragma once

#include <string>

namespace sentinel::testing {

std::string source_path(const std::string& relative);  // <repo>/relative
std::string shared_data_path(const std::string& relative);  // ../shared/data/relative, must exist
std::string default_model();  // the installed default model, verified
std::string read_file(const std::string& path);
std::string cli_path();  // the built `sentinel` executable

}  // namespace sentinel::testing
