// Cache folder resolution and the installed models' locations and checksums.
#include "sentinel/core/paths.h"

#include <cstdlib>
#include <filesystem>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"

namespace sentinel {

std::string cache_dir() {
  if (const char* home = std::getenv("SENTINEL_HOME"); home != nullptr && *home != '\0') return home;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0')
    return std::string(xdg) + "/sentinel";
  const char* home = std::getenv("HOME");
  check(home != nullptr, "neither SENTINEL_HOME nor HOME is set; set SENTINEL_HOME to a cache folder");
  return std::string(home) + "/.cache/sentinel";
}

std::string default_model_path() {
  const std::string path = cache_dir() + "/models/" + DefaultModel::file_name;
  const std::string fix = "Run scripts/setup.sh to install it, or pass --model PATH.";
  check(std::filesystem::exists(path), "the default model is not installed: '", path, "' does not exist. ", fix);
  verify_sha256(path, DefaultModel::sha256, "Delete it and run scripts/setup.sh to reinstall it.");
  return path;
}

std::string gemma3_model_path() {
  const std::string path = cache_dir() + "/models/" + Gemma3Model::file_name;
  check(std::filesystem::exists(path), "Gemma 3 270M is not installed: '", path,
        "' does not exist. Run scripts/setup.sh to install it.");
  verify_sha256(path, Gemma3Model::sha256, "Delete it and run scripts/setup.sh to reinstall it.");
  return path;
}

std::string minilm_model_path() {
  const std::string folder = cache_dir() + "/models/" + MiniLmModel::folder_name;
  const std::string fix = "Run scripts/setup.sh to install it.";
  for (const MiniLmModel::File& file : MiniLmModel::files) {
    const std::string path = folder + "/" + file.name;
    check(std::filesystem::exists(path), "the sentence encoder all-MiniLM-L6-v2 is not installed: '", path,
          "' does not exist. ", fix);
    verify_sha256(path, file.sha256, "Delete '" + folder + "' and run scripts/setup.sh to reinstall it.");
  }
  return folder;
}

}  // namespace sentinel
