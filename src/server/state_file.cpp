// State file reader and writer (format in state_file.h). The header is JSON so that a person can
// read what a file holds with `head -c 2000`; the payload is raw and checked by its SHA-256.
#include "sentinel/server/state_file.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"

namespace sentinel::server {
namespace {

constexpr char kMagic[10] = {'S', 'N', 'T', 'L', 'S', 'T', 'A', 'T', 'E', '\0'};

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
T take(const std::string& in, size_t& at) {
  T value;
  std::memcpy(&value, in.data() + at, sizeof(T));
  at += sizeof(T);
  return value;
}

constexpr size_t kCellBytes = 8 + 1 + 4 + 4;

}  // namespace

int64_t save_state_file(const std::string& path, const SessionState& s, const StateFileInfo& info) {
  std::string payload;
  payload.reserve(static_cast<size_t>(s.bytes()));
  for (int32_t t : s.tokens) put(payload, t);
  for (const CacheCell& c : s.cells) {
    put(payload, c.position);
    put(payload, static_cast<uint8_t>(c.kind));
    put(payload, int32_t{0});  // reserved (state_file.h)
    put(payload, c.span);
  }
  for (int64_t layer = 0; layer < s.n_layer(); ++layer) {
    payload.append(reinterpret_cast<const char*>(s.keys[layer].data()), s.keys[layer].size());
    payload.append(reinterpret_cast<const char*>(s.values[layer].data()), s.values[layer].size());
  }
  nlohmann::json spans = nlohmann::json::array();
  for (const Span& sp : s.policy.spans) spans.push_back({sp.begin, sp.end});
  nlohmann::json layer_cells = nlohmann::json::array();  // cells each layer holds (sliding-window layers: fewer)
  for (int64_t layer = 0; layer < s.n_layer(); ++layer)
    layer_cells.push_back(s.n_head_kv * s.row_bytes > 0 ? static_cast<int64_t>(s.keys[layer].size()) / (s.n_head_kv * s.row_bytes) : 0);
  const nlohmann::json header = {
      {"format", "sentinel-session-state"},
      {"model_fingerprint", info.model_fingerprint},
      {"model", info.model_name},
      {"method", method_name(s.policy.method)},
      {"ratio", s.policy.ratio},
      {"span", s.policy.span},
      {"window", s.policy.window},
      {"sinks", s.policy.sinks},
      {"seed", s.policy.seed},
      {"cl_id", s.policy.cl_id},
      {"cr_id", s.policy.cr_id},
      {"spans", spans},
      {"n_tokens", s.tokens.size()},
      {"n_cells", s.cells.size()},
      {"n_layer", s.n_layer()},
      {"window_begin", s.window_begin},
      {"layer_cells", layer_cells},
      {"n_head_kv", s.n_head_kv},
      {"row_bytes", s.row_bytes},
      {"row_type", kernels::row_type_name(s.row_type)},
      {"row_type_id", static_cast<int>(s.row_type)},
      {"stats",
       {{"ordinary_seen", s.stats.ordinary_seen},
        {"sentinels_fed", s.stats.sentinels_fed},
        {"cells_evicted", s.stats.cells_evicted},
        {"peak_cells", s.stats.peak_cells},
        {"peak_bytes", s.stats.peak_bytes}}},
      {"payload_bytes", payload.size()},
      {"payload_sha256", sha256_bytes(payload)}};
  const std::string header_text = header.dump();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.good(), "cannot write the state file '", tmp, "'");
    out.write(kMagic, sizeof(kMagic));
    const uint32_t version = kStateFileVersion;
    const uint64_t n = header_text.size();
    out.write(reinterpret_cast<const char*>(&version), sizeof(version));
    out.write(reinterpret_cast<const char*>(&n), sizeof(n));
    out << header_text << payload;
    check(out.good(), "writing the state file '", tmp, "' failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
  return static_cast<int64_t>(sizeof(kMagic) + 4 + 8 + header_text.size() + payload.size());
}

SessionState load_state_file(const std::string& path, const StateFileInfo& expected) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read the state file '", path, "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string data = buffer.str();
  const size_t fixed = sizeof(kMagic) + 4 + 8;
  check(data.size() >= fixed && std::memcmp(data.data(), kMagic, sizeof(kMagic)) == 0, "'", path,
        "' is not a Sentinel session state file (no SNTLSTATE signature)");
  size_t at = sizeof(kMagic);
  const uint32_t version = take<uint32_t>(data, at);
  check(version == kStateFileVersion, "'", path, "' is a version ", version, " state file; this build reads version ",
        kStateFileVersion, " (save it again with this server)");
  const uint64_t header_size = take<uint64_t>(data, at);
  check(header_size <= data.size() - at, "'", path, "' is truncated: its header runs past the end of the file");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(data.substr(at, header_size));
  } catch (const nlohmann::json::exception& e) {
    fail("'", path, "' has a corrupt header: ", e.what());
  }
  at += header_size;
  const std::string payload = data.substr(at);
  try {
    check(h.at("format") == "sentinel-session-state", "'", path, "' is not a session state file");
    check(h.at("model_fingerprint").get<std::string>() == expected.model_fingerprint, "'", path,
          "' was saved with another model (", h.value("model", "?"), ", fingerprint ",
          h.at("model_fingerprint").get<std::string>().substr(0, 12), "...) than the one served (", expected.model_name,
          ", ", expected.model_fingerprint.substr(0, 12), "...); restore it on a server running that model");
    check(payload.size() == h.at("payload_bytes").get<uint64_t>(), "'", path, "' is truncated: ", payload.size(),
          " payload bytes of ", h.at("payload_bytes").get<uint64_t>());
    check(sha256_bytes(payload) == h.at("payload_sha256").get<std::string>(), "'", path,
          "' is corrupt: its payload does not match the SHA-256 in its header");
    SessionState s;
    s.policy.method = parse_method(h.at("method").get<std::string>());
    s.policy.ratio = h.at("ratio").get<double>();
    s.policy.span = h.at("span").get<int64_t>();
    s.policy.window = h.at("window").get<int64_t>();
    s.policy.sinks = h.at("sinks").get<int64_t>();
    s.policy.seed = h.at("seed").get<uint64_t>();
    s.policy.cl_id = h.at("cl_id").get<int32_t>();
    s.policy.cr_id = h.at("cr_id").get<int32_t>();
    for (const auto& sp : h.at("spans")) s.policy.spans.push_back({sp.at(0).get<int64_t>(), sp.at(1).get<int64_t>()});
    const auto n_tokens = h.at("n_tokens").get<int64_t>();
    const auto n_cells = h.at("n_cells").get<int64_t>();
    const auto n_layer = h.at("n_layer").get<int64_t>();
    s.n_head_kv = h.at("n_head_kv").get<int64_t>();
    s.row_bytes = h.at("row_bytes").get<int64_t>();
    s.row_type = static_cast<kernels::RowType>(h.at("row_type_id").get<int>());
    const auto& st = h.at("stats");
    s.stats.ordinary_seen = st.at("ordinary_seen").get<int64_t>();
    s.stats.sentinels_fed = st.at("sentinels_fed").get<int64_t>();
    s.stats.cells_evicted = st.at("cells_evicted").get<int64_t>();
    s.stats.peak_cells = st.at("peak_cells").get<int64_t>();
    s.stats.peak_bytes = st.at("peak_bytes").get<int64_t>();
    s.stats.cells_in_use = n_cells;
    s.window_begin = h.at("window_begin").get<int64_t>();
    const auto layer_cells = h.at("layer_cells").get<std::vector<int64_t>>();
    check(n_tokens >= 0 && n_cells >= 0 && n_layer >= 0 && s.n_head_kv >= 0 && s.row_bytes >= 0 &&
              static_cast<int64_t>(layer_cells.size()) == n_layer && 0 <= s.window_begin && s.window_begin <= n_cells,
          "'", path, "' has an inconsistent header: ", n_layer, " layers, ", layer_cells.size(), " layer sizes, ", n_cells,
          " cells, window from cell ", s.window_begin);
    uint64_t expected_size = static_cast<uint64_t>(n_tokens) * 4 + static_cast<uint64_t>(n_cells) * kCellBytes;
    for (int64_t cells : layer_cells) {
      check(cells == n_cells || cells == n_cells - s.window_begin, "'", path, "' has a layer of ", cells,
            " cells; its layers hold ", n_cells, " or, sliding-window layers, ", n_cells - s.window_begin);
      expected_size += static_cast<uint64_t>(2 * s.n_head_kv * cells * s.row_bytes);
    }
    check(payload.size() == expected_size, "'", path, "' has inconsistent sizes: the header describes ", expected_size,
          " payload bytes, the file holds ", payload.size());
    size_t p = 0;
    s.tokens.resize(static_cast<size_t>(n_tokens));
    for (auto& t : s.tokens) t = take<int32_t>(payload, p);
    s.cells.resize(static_cast<size_t>(n_cells));
    for (auto& c : s.cells) {
      c.position = take<int64_t>(payload, p);
      c.kind = static_cast<CellKind>(take<uint8_t>(payload, p));
      take<int32_t>(payload, p);  // reserved (state_file.h)
      c.span = take<int32_t>(payload, p);
    }
    for (int64_t layer = 0; layer < n_layer; ++layer) {
      const auto rows = static_cast<size_t>(s.n_head_kv * layer_cells[layer] * s.row_bytes);
      s.keys.emplace_back(payload.begin() + static_cast<std::ptrdiff_t>(p), payload.begin() + static_cast<std::ptrdiff_t>(p + rows));
      p += rows;
      s.values.emplace_back(payload.begin() + static_cast<std::ptrdiff_t>(p), payload.begin() + static_cast<std::ptrdiff_t>(p + rows));
      p += rows;
    }
    s.policy.validate();
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail("'", path, "' has an incomplete header (", e.what(), ")");
  }
}

}  // namespace sentinel::server
