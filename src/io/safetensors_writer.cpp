// The safetensors writer: builds the header the reference writer builds (same data order, header
// padded with spaces to 8 bytes) and replaces the target file atomically. Reading is safetensors.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "sentinel/core/error.h"
#include "sentinel/io/safetensors.h"

namespace sentinel {
namespace {

// Writes all of `bytes` to fd, retrying short writes and EINTR.
void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    check(n > 0, "cannot write '", path, "': ", std::strerror(errno));
    done += static_cast<size_t>(n);
  }
}

void fsync_or_throw(int fd, const std::string& path) {
  check(::fsync(fd) == 0, "cannot flush '", path, "' to disk: ", std::strerror(errno));
}

}  // namespace

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                            std::span<const uint8_t> data) {
  check(!name.empty() && name != "__metadata__", "safetensors tensor name '", name,
        "' is reserved or empty; pick another name");
  check(!entries_.contains(name), "safetensors writer already has a tensor named '", name, "'");
  int64_t n_elements = 1;
  for (int64_t dim : shape) {
    check(dim >= 0, "tensor '", name, "' has negative dim ", dim);
    check(!__builtin_mul_overflow(n_elements, dim, &n_elements), "tensor '", name, "' has too many elements");
  }
  uint64_t n_bytes = 0;
  check(!__builtin_mul_overflow(static_cast<uint64_t>(n_elements), dtype_size(dtype), &n_bytes) &&
            n_bytes == data.size(),
        "tensor '", name, "' (", dtype_name(dtype), ", ", n_elements, " elements of ", dtype_size(dtype),
        " bytes) does not match the ", data.size(), " bytes given");
  entries_.emplace(name, Entry{dtype, std::move(shape), std::vector<uint8_t>(data.begin(), data.end())});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

std::string SafetensorsWriter::serialize() const {
  // Largest elements first, then by name: each tensor starts at a multiple of its element size
  // because the header is padded to 8 bytes (the reference's order).
  std::vector<const std::pair<const std::string, Entry>*> order;
  for (const auto& entry : entries_) order.push_back(&entry);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return dtype_size(a->second.dtype) > dtype_size(b->second.dtype);
  });

  nlohmann::json header = nlohmann::json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto* entry : order) {
    const uint64_t end = offset + entry->second.data.size();
    header[entry->first] = {{"dtype", dtype_name(entry->second.dtype)},
                            {"shape", entry->second.shape},
                            {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("cannot write a safetensors header: a tensor name or metadata string is not valid UTF-8 (", e.what(), ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::string out;
  out.reserve(8 + text.size() + offset);
  const uint64_t n_header = text.size();
  out.append(reinterpret_cast<const char*>(&n_header), 8);  // little-endian host
  out += text;
  for (const auto* entry : order)
    out.append(reinterpret_cast<const char*>(entry->second.data.data()), entry->second.data.size());
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::string bytes = serialize();
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  check(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno), " (does the folder exist and is it writable?)");
  try {
    write_all(fd, bytes, tmp);
    fsync_or_throw(fd, tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  const bool closed = ::close(fd) == 0;
  const int close_errno = errno;
  if (!closed || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = closed ? errno : close_errno;
    ::unlink(tmp.c_str());
    fail("cannot replace '", path, "' with '", tmp, "': ", std::strerror(err));
  }
  // The rename is durable only once the folder's entry is on disk.
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  const int dir_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  check(dir_fd >= 0, "cannot open folder '", folder, "' to flush it: ", std::strerror(errno));
  const bool synced = ::fsync(dir_fd) == 0;
  const int sync_errno = errno;
  ::close(dir_fd);
  check(synced, "cannot flush folder '", folder, "' to disk: ", std::strerror(sync_errno));
}

}  // namespace sentinel
