// SHA-256 through OpenSSL's EVP interface, streaming the file in 1 MiB blocks.
#include "sentinel/core/sha256.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

struct DigestContext {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
  DigestContext() {
    check(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1, "OpenSSL SHA-256 init failed");
  }
  void update(const void* data, size_t n) { EVP_DigestUpdate(ctx.get(), data, n); }
  std::string hex() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx.get(), md.data(), &n);
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 15];
    }
    return out;
  }
};

std::string file_stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  std::ostringstream out;
  out << st.st_size << " " << st.st_mtim.tv_sec << "." << st.st_mtim.tv_nsec;
  return out.str();
}

}  // namespace

std::string sha256_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read '", path, "'");
  DigestContext digest;
  std::vector<char> block(1 << 20);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    digest.update(block.data(), static_cast<size_t>(in.gcount()));
  }
  return digest.hex();
}

std::string sha256_bytes(std::string_view bytes) {
  DigestContext digest;
  digest.update(bytes.data(), bytes.size());
  return digest.hex();
}

void verify_sha256(const std::string& path, const std::string& expected_hex, const std::string& fix_hint) {
  const std::string stamp_path = path + ".sha256-ok";
  const std::string stamp = file_stamp(path) + " " + expected_hex;
  {
    std::ifstream in(stamp_path);
    std::string previous;
    if (in && std::getline(in, previous) && previous == stamp) return;
  }
  const std::string actual = sha256_file(path);
  check(actual == expected_hex, "'", path, "' is corrupt: its SHA-256 is ", actual, ", expected ", expected_hex,
        ". ", fix_hint);
  std::ofstream out(stamp_path);  // best effort: a read-only cache folder only costs a re-hash
  if (out) out << stamp << "\n";
}

}  // namespace sentinel
