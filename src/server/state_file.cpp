// State file reader and writer (format in state_file.h). The header is JSON so that a person can
// read what a file holds with `head -c 2000`; the payload is raw and checked by its SHA-256. The
// reader trusts nothing: every size is bounded before it is multiplied, so a crafted header
// cannot make it read past the file or allocate what the file does not hold.
#include "sentinel/server/state_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "sentinel/core/error.h"
#include "sentinel/core/sha256.h"

namespace sentinel::server {
namespace {

constexpr char kMagic[10] = {'S', 'N', 'T', 'L', 'S', 'T', 'A', 'T', 'E', '\0'};
constexpr size_t kCellBytes = 8 + 1 + 4 + 4;
// Far past any model, and small enough that no product of them overflows 64 bits.
constexpr int64_t kMaxLayers = 4096, kMaxHeads = 4096, kMaxRowBytes = int64_t{1} << 20;
constexpr uint32_t kMaxRecords = 64;  // the session and its checkpoints
constexpr uint64_t kMaxHeaderBytes = uint64_t{64} << 20;  // explicit spans of a long context fit many times over
constexpr int64_t kMaxCount = int64_t{1} << 48;  // stats: far past any run, and sums of them stay finite

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// The caller has checked that sizeof(T) bytes remain.
template <typename T>
T take(std::string_view in, size_t& at) {
  T value;
  std::memcpy(&value, in.data() + at, sizeof(T));
  at += sizeof(T);
  return value;
}

std::string record_payload(const SessionState& s) {
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
  return payload;
}

nlohmann::json record_header(const SessionState& s, const StateFileInfo& info, const std::string& payload) {
  nlohmann::json spans = nlohmann::json::array();
  for (const Span& sp : s.policy.spans) spans.push_back({sp.begin, sp.end});
  nlohmann::json layer_cells = nlohmann::json::array();  // cells each layer holds (sliding-window layers: fewer)
  for (int64_t layer = 0; layer < s.n_layer(); ++layer)
    layer_cells.push_back(s.n_head_kv * s.row_bytes > 0 ? static_cast<int64_t>(s.keys[layer].size()) / (s.n_head_kv * s.row_bytes) : 0);
  return {{"format", "sentinel-session-state"},
          {"model_fingerprint", info.model_fingerprint},
          {"model", info.model_name},
          {"method", method_name(s.policy.method)},
          {"layout", span_layout_name(s.policy.layout)},
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
}

// One header field as an integer in [lo, hi]. JSON integers only: a float such as 1e300 has no
// 64-bit value to convert to.
int64_t integer(const nlohmann::json& h, const char* key, int64_t lo, int64_t hi, const std::string& name) {
  const nlohmann::json& v = h.at(key);
  check(v.is_number_integer(), "'", name, "' has a header field '", key, "' that is not an integer");
  const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                           : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  check(fits, "'", name, "' has a header field '", key, "' outside [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

double number(const nlohmann::json& h, const char* key, const std::string& name) {
  const nlohmann::json& v = h.at(key);
  check(v.is_number(), "'", name, "' has a header field '", key, "' that is not a number");
  return v.get<double>();
}

// One record at `at` (advanced past it).
SessionState parse_record(std::string_view data, size_t& at, const std::string& name, const StateFileInfo& expected) {
  check(data.size() - at >= sizeof(uint64_t), "'", name, "' is truncated: a record's header length is missing");
  const uint64_t header_size = take<uint64_t>(data, at);
  check(header_size <= data.size() - at, "'", name, "' is truncated: its header runs past the end of the file");
  check(header_size <= kMaxHeaderBytes, "'", name, "' has a header of ", header_size, " bytes; a state file's is at most ",
        kMaxHeaderBytes, "");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(data.begin() + at, data.begin() + at + header_size);
  } catch (const nlohmann::json::exception& e) {
    fail("'", name, "' has a corrupt header: ", e.what());
  }
  at += header_size;
  try {
    check(h.is_object() && h.at("format") == "sentinel-session-state", "'", name, "' is not a session state file");
    check(h.at("model_fingerprint").get<std::string>() == expected.model_fingerprint, "'", name,
          "' was saved with another model (", h.value("model", "?"), ", fingerprint ",
          h.at("model_fingerprint").get<std::string>().substr(0, 12), "...) than the one served (", expected.model_name,
          ", ", expected.model_fingerprint.substr(0, 12), "...); restore it on a server running that model");
    const auto remaining = static_cast<int64_t>(data.size() - at);
    const nlohmann::json& declared = h.at("payload_bytes");
    check(declared.is_number_unsigned(), "'", name, "' has a header field 'payload_bytes' that is not an unsigned integer");
    check(declared.get<uint64_t>() <= static_cast<uint64_t>(remaining), "'", name, "' is truncated: ", remaining,
          " payload bytes of ", declared.get<uint64_t>());
    const std::string_view payload = data.substr(at, declared.get<uint64_t>());
    at += payload.size();
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // a fuzzer cannot forge hashes: let it reach the checks below
    check(sha256_bytes(payload) == h.at("payload_sha256").get<std::string>(), "'", name,
          "' is corrupt: its payload does not match the SHA-256 in its header");
#endif
    const auto bytes = static_cast<int64_t>(payload.size());
    SessionState s;
    s.policy.method = parse_method(h.at("method").get<std::string>());
    s.policy.layout = parse_span_layout(h.value("layout", "stream"));  // files written before it was saved: stream
    s.policy.ratio = number(h, "ratio", name);
    s.policy.span = integer(h, "span", 0, CompressionLimits::kMaxSpan, name);
    s.policy.window = integer(h, "window", 0, CompressionLimits::kMaxWindow, name);
    s.policy.sinks = integer(h, "sinks", 0, CompressionLimits::kMaxSinks, name);
    check(h.at("seed").is_number_unsigned(), "'", name, "' has a header field 'seed' that is not an unsigned integer");
    s.policy.seed = h.at("seed").get<uint64_t>();
    s.policy.cl_id = static_cast<int32_t>(integer(h, "cl_id", -1, std::numeric_limits<int32_t>::max(), name));
    s.policy.cr_id = static_cast<int32_t>(integer(h, "cr_id", -1, std::numeric_limits<int32_t>::max(), name));
    for (const auto& sp : h.at("spans")) {
      constexpr int64_t kFar = int64_t{1} << 40;  // past any context; keeps end - begin finite
      check(sp.is_array() && sp.size() == 2 && sp[0].is_number_integer() && sp[1].is_number_integer() &&
                sp[0].get<int64_t>() >= 0 && sp[0].get<int64_t>() <= kFar && sp[1].get<int64_t>() >= 0 &&
                sp[1].get<int64_t>() <= kFar,
            "'", name, "' has a span that is not a [begin, end] pair of token indices");
      s.policy.spans.push_back({sp[0].get<int64_t>(), sp[1].get<int64_t>()});
    }
    const int64_t n_tokens = integer(h, "n_tokens", 0, bytes / 4, name);
    const int64_t n_cells = integer(h, "n_cells", 0, bytes / static_cast<int64_t>(kCellBytes), name);
    const int64_t n_layer = integer(h, "n_layer", 0, kMaxLayers, name);
    const int64_t at_least = n_layer > 0 ? 1 : 0;  // layers hold rows of heads
    s.n_head_kv = integer(h, "n_head_kv", at_least, kMaxHeads, name);
    s.row_bytes = integer(h, "row_bytes", at_least, kMaxRowBytes, name);
    s.row_type = static_cast<kernels::RowType>(
        integer(h, "row_type_id", 0, static_cast<int64_t>(kernels::RowType::Q6_K), name));
    const nlohmann::json& st = h.at("stats");
    s.stats.ordinary_seen = integer(st, "ordinary_seen", 0, kMaxCount, name);
    s.stats.sentinels_fed = integer(st, "sentinels_fed", 0, kMaxCount, name);
    s.stats.cells_evicted = integer(st, "cells_evicted", 0, kMaxCount, name);
    s.stats.peak_cells = integer(st, "peak_cells", 0, kMaxCount, name);
    s.stats.peak_bytes = integer(st, "peak_bytes", 0, kMaxCount, name);
    s.stats.cells_in_use = n_cells;
    s.window_begin = integer(h, "window_begin", 0, n_cells, name);
    const nlohmann::json& layer_cells = h.at("layer_cells");
    check(layer_cells.is_array() && static_cast<int64_t>(layer_cells.size()) == n_layer, "'", name,
          "' has an inconsistent header: ", n_layer, " layers but ", layer_cells.size(), " layer sizes");
    // Every term below is at most the payload's size, and there are at most kMaxLayers + 2 of them.
    int64_t expected_size = n_tokens * 4 + n_cells * static_cast<int64_t>(kCellBytes);
    std::vector<int64_t> cells_of(static_cast<size_t>(n_layer));
    const int64_t layer_cell_bytes = 2 * s.n_head_kv * s.row_bytes;  // K and V of one cell, all heads
    for (int64_t layer = 0; layer < n_layer; ++layer) {
      const nlohmann::json& c = layer_cells[static_cast<size_t>(layer)];
      check(c.is_number_integer() && (c.get<int64_t>() == n_cells || c.get<int64_t>() == n_cells - s.window_begin), "'",
            name, "' has a layer (", layer, ") whose cell count is not ", n_cells, " or, sliding-window layers, ",
            n_cells - s.window_begin);
      cells_of[layer] = c.get<int64_t>();
      check(layer_cell_bytes == 0 || cells_of[layer] <= bytes / layer_cell_bytes, "'", name,
            "' has inconsistent sizes: layer ", layer, " holds more rows than the payload");
      expected_size += cells_of[layer] * layer_cell_bytes;
      check(expected_size <= bytes, "'", name, "' has inconsistent sizes: the header describes more than the ",
            bytes, " payload bytes the file holds");
    }
    check(expected_size == bytes, "'", name, "' has inconsistent sizes: the header describes ", expected_size,
          " payload bytes, the file holds ", bytes);
    size_t p = 0;
    s.tokens.resize(static_cast<size_t>(n_tokens));
    for (auto& t : s.tokens) t = take<int32_t>(payload, p);
    s.cells.resize(static_cast<size_t>(n_cells));
    for (auto& c : s.cells) {
      c.position = take<int64_t>(payload, p);
      const auto kind = take<uint8_t>(payload, p);
      take<int32_t>(payload, p);  // reserved (state_file.h)
      c.span = take<int32_t>(payload, p);
      check(kind <= static_cast<uint8_t>(CellKind::CompressRight) && c.position >= 0 && c.span >= -1, "'", name,
            "' has a corrupt cell (kind ", int{kind}, ", position ", c.position, ", span ", c.span, ")");
      c.kind = static_cast<CellKind>(kind);
    }
    for (int64_t layer = 0; layer < n_layer; ++layer) {
      const auto rows = static_cast<size_t>(cells_of[layer] * layer_cell_bytes / 2);
      s.keys.emplace_back(payload.begin() + p, payload.begin() + p + rows);
      p += rows;
      s.values.emplace_back(payload.begin() + p, payload.begin() + p + rows);
      p += rows;
    }
    s.policy.validate();
    return s;
  } catch (const nlohmann::json::exception& e) {
    fail("'", name, "' has an incomplete header (", e.what(), ")");
  }
}

}  // namespace

std::string state_file_bytes(std::span<const SessionState> states, const StateFileInfo& info) {
  check(!states.empty() && states.size() <= kMaxRecords, "save_state_file: ", states.size(),
        " states given; a file holds a session and at most ", kMaxRecords - 1, " checkpoints");
  for (const SessionState& checkpoint : states.subspan(1))
    check(checkpoint.tokens.size() < states[0].tokens.size() &&
              std::equal(checkpoint.tokens.begin(), checkpoint.tokens.end(), states[0].tokens.begin()),
          "save_state_file: a checkpoint's tokens must be a proper prefix of the session's");
  std::string out(kMagic, sizeof(kMagic));
  put(out, kStateFileVersion);
  put(out, static_cast<uint32_t>(states.size()));
  for (const SessionState& s : states) {
    const std::string payload = record_payload(s);
    const std::string header = record_header(s, info, payload).dump();
    put(out, static_cast<uint64_t>(header.size()));
    out += header;
    out += payload;
  }
  return out;
}

int64_t save_state_file(const std::string& path, std::span<const SessionState> states, const StateFileInfo& info) {
  const std::string bytes = state_file_bytes(states, info);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    check(out.good(), "cannot write the state file '", tmp, "'");
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    check(out.good(), "writing the state file '", tmp, "' failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
  return static_cast<int64_t>(bytes.size());
}

std::vector<SessionState> parse_state_file(std::string_view data, const std::string& name, const StateFileInfo& expected) {
  check(data.size() >= sizeof(kMagic) + 4 && std::memcmp(data.data(), kMagic, sizeof(kMagic)) == 0, "'", name,
        "' is not a Sentinel session state file (no SNTLSTATE signature)");
  size_t at = sizeof(kMagic);
  const uint32_t version = take<uint32_t>(data, at);
  check(version >= kOldestStateFileVersion && version <= kStateFileVersion, "'", name, "' is a version ", version,
        " state file; this build reads versions ", kOldestStateFileVersion, " to ", kStateFileVersion,
        " (save it again with this server)");
  uint32_t count = 1;
  if (version >= 3) {
    check(data.size() - at >= sizeof(uint32_t), "'", name, "' is truncated: its record count is missing");
    count = take<uint32_t>(data, at);
    check(count >= 1 && count <= kMaxRecords, "'", name, "' holds ", count, " records; a state file holds a session and at most ",
          kMaxRecords - 1, " checkpoints");
  }
  std::vector<SessionState> records;
  for (uint32_t r = 0; r < count; ++r) records.push_back(parse_record(data, at, name, expected));
  check(at == data.size(), "'", name, "' has ", data.size() - at, " bytes after its last record");
  const SessionState& session = records[0];
  for (size_t r = 1; r < records.size(); ++r) {
    const SessionState& c = records[r];
    const PolicyOptions &a = c.policy, &b = session.policy;
    const bool same_options = a.method == b.method && a.ratio == b.ratio && a.span == b.span && a.window == b.window &&
                              a.sinks == b.sinks && a.seed == b.seed && a.layout == b.layout && a.cl_id == b.cl_id &&
                              a.cr_id == b.cr_id;
    check(c.tokens.size() < session.tokens.size() &&
              std::equal(c.tokens.begin(), c.tokens.end(), session.tokens.begin()) && c.n_layer() == session.n_layer() &&
              c.n_head_kv == session.n_head_kv && c.row_bytes == session.row_bytes && c.row_type == session.row_type &&
              same_options,
          "'", name, "' has a checkpoint (record ", r, ") that is not an earlier point of its session");
  }
  return records;
}

std::vector<SessionState> load_state_records(const std::string& path, const StateFileInfo& expected) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot read the state file '", path, "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return parse_state_file(buffer.str(), path, expected);
}

SessionState load_state_file(const std::string& path, const StateFileInfo& expected) {
  return std::move(load_state_records(path, expected).front());
}

}  // namespace sentinel::server
