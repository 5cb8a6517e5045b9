// SHA-256 of files, used to verify downloaded model files and to identify a base model in
// adapter metadata. Verification results are cached in a stamp file beside the model.
#pragma once

#include <string>
#include <string_view>

namespace sentinel {

// Lower-case hex SHA-256 of the whole file. Throws Error if it cannot be read.
std::string sha256_file(const std::string& path);

// Lower-case hex SHA-256 of a byte string.
std::string sha256_bytes(std::string_view bytes);

// Checks that the file at `path` has the SHA-256 `expected_hex`, throwing Error with `fix_hint`
// appended on mismatch. A successful check is remembered in "<path>.sha256-ok" (size and mtime),
// so that repeated runs do not re-hash an unchanged file.
void verify_sha256(const std::string& path, const std::string& expected_hex, const std::string& fix_hint);

}  // namespace sentinel
