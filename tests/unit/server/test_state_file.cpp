// Session state capture, the state file and restore, on the tiny model: a restored session
// continues with the logits the original would have produced, under every resumable method;
// files of another model, truncated, altered or of another version are refused by name.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/model/adapter.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/server/prompt_cache.h"
#include "sentinel/server/session_capture.h"
#include "sentinel/server/session_state.h"
#include "sentinel/server/state_file.h"
#include "support/test_paths.h"

namespace sentinel::server {
namespace {

LoadedModel& tiny() {
  static LoadedModel m = [] {
    LoadedModel out = load_model(testing::source_path("tests/data/tiny/hf"));
    install_sentinels(out.model);
    return out;
  }();
  return m;
}

// The tiny Gemma 3 of tests/data/families: sliding-window layers around a global one, an
// 8-position window, so a state of 24 tokens holds only the window's rows in those layers.
LoadedModel& gemma3() {
  static LoadedModel m = [] {
    LoadedModel out = load_model(testing::source_path("tests/data/families/gemma3/model.f16.gguf"));
    install_sentinels(out.model);
    return out;
  }();
  return m;
}

std::vector<int32_t> tokens(int64_t n, const LoadedModel& m = tiny()) {
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % m.config.n_vocab);
  return ids;
}

std::vector<PolicyOptions> policies(const LoadedModel& m = tiny()) {
  const SentinelTokens st = sentinel_tokens(m.config);
  PolicyOptions none;
  PolicyOptions scheduled;
  scheduled.method = Method::Sentinel;
  scheduled.ratio = 0.5;
  scheduled.span = 4;
  scheduled.cl_id = st.cl;
  scheduled.cr_id = st.cr;
  PolicyOptions marked = scheduled;
  marked.spans = {{3, 9}, {12, 20}, {30, 36}};  // the last span lies past the saved prefix
  PolicyOptions streaming;
  streaming.method = Method::Streaming;
  streaming.ratio = 0.5;
  streaming.sinks = 2;
  PolicyOptions sepllm = streaming;  // its plan reads the tokens: resume replays them
  sepllm.method = Method::SepLLM;
  for (int64_t k = 0; k < 40; k += 3) sepllm.separators.push_back(static_cast<int32_t>((k * 37 + 11) % m.config.n_vocab));
  return {none, scheduled, marked, streaming, sepllm};
}

class StateFile : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  // One file per process: ctest -j runs the cases of this fixture at the same time.
  std::string path_ = (std::filesystem::temp_directory_path() /
                       ("sentinel_state_test." + std::to_string(getpid()) + ".state")).string();
  StateFileInfo info(LoadedModel& m = tiny()) { return {model_fingerprint(m.model), m.name}; }

  // Saves a session after 24 tokens, loads it into a fresh one, and feeds both 16 more.
  void expect_restored_session_continues_exactly(LoadedModel& m) {
    const std::vector<int32_t> all = tokens(40, m);
    const std::span<const int32_t> prefix(all.data(), 24), rest(all.data() + 24, 16);
    for (const PolicyOptions& policy : policies(m)) {
      SCOPED_TRACE(method_name(policy.method) + (policy.spans.empty() ? "" : " marked"));
      Session original(m.model, m.model->cache_options(16), policy);
      original.append(prefix, Logits::None, 4);  // in steps, so a window moves
      const SessionState captured = capture_state(original, prefix);
      save_state_file(path_, captured, info(m));
      const SessionState loaded = load_state_file(path_, info(m));
      EXPECT_EQ(loaded.tokens, captured.tokens);
      EXPECT_EQ(loaded.cells.size(), captured.cells.size());
      EXPECT_EQ(loaded.window_begin, original.cache().window_begin());
      if (policy.method != Method::None) EXPECT_LT(loaded.cells.size(), prefix.size());  // really compressed

      Session restored(m.model, m.model->cache_options(16), policy);
      restore_state(restored, loaded);
      EXPECT_EQ(restored.next_position(), 24);
      EXPECT_EQ(restored.stats().cells_evicted, original.stats().cells_evicted);
      EXPECT_EQ(restored.cache().bytes_in_use(), original.cache().bytes_in_use());
      const at::Tensor expected = original.append(rest, Logits::All);  // [16, n_vocab]
      const at::Tensor got = restored.append(rest, Logits::All);
      if (m.config.has_sliding_layers()) {
        // The window layers of the two sessions move their rows at different steps, so their
        // attention passes hold different masked-out rows: the same to rounding, not to the bit.
        EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4);
      } else {
        EXPECT_TRUE(at::equal(got, expected)) << "max diff " << (got - expected).abs().max().item<double>();
      }
      EXPECT_EQ(restored.cache().size(), original.cache().size());
      EXPECT_DOUBLE_EQ(restored.stats().achieved_ratio(), original.stats().achieved_ratio());
    }
  }
};

TEST_F(StateFile, RestoredSessionContinuesExactly) {
  c10::InferenceMode guard;
  expect_restored_session_continues_exactly(tiny());
}

TEST_F(StateFile, RestoredSlidingWindowSessionContinuesExactly) {
  c10::InferenceMode guard;
  expect_restored_session_continues_exactly(gemma3());
  Session s(gemma3().model, gemma3().model->cache_options(16));
  s.append(tokens(24, gemma3()), Logits::None, 4);
  EXPECT_GT(s.cache().window_begin(), 0) << "the state must hold a moved window";
}

// A state saved after a chat holds the prompt and the answer; the same question asked again (or a
// continuation that departs from the answer) shares only a prefix. The prompt cache cuts an
// uncompressed state at the longest common prefix, and the session continues from it as a fresh
// one reading the whole prompt does. A compressed state is never cut: it has evicted what the
// shorter one would hold.
TEST_F(StateFile, RestoredStateIsReusedUpToTheLongestCommonPrefix) {
  c10::InferenceMode guard;
  for (LoadedModel* m : {&tiny(), &gemma3()}) {
    SCOPED_TRACE(m->name);
    const std::vector<int32_t> saved = tokens(40, *m);  // "prompt + answer"
    std::vector<int32_t> asked(saved.begin(), saved.begin() + 30);
    for (int32_t t : {5, 6, 7, 8, 9}) asked.push_back(t);  // the same prompt, another continuation
    Session original(m->model, m->model->cache_options(64));
    original.append(saved, Logits::None);
    PromptCache cache(1 << 30);
    cache.insert(std::make_shared<SessionState>(capture_state(original, saved)));
    const auto hit = cache.lookup(asked, {});
    ASSERT_TRUE(hit);
    ASSERT_EQ(hit->tokens.size(), 30u);
    Session resumed(m->model, m->model->cache_options(64));
    restore_state(resumed, *hit);
    const at::Tensor got = resumed.append(std::span(asked).subspan(30), Logits::All);
    Session fresh(m->model, m->model->cache_options(64));
    const at::Tensor expected = fresh.append(asked, Logits::All).narrow(0, 30, 5);
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4);

    Session compressed(m->model, m->model->cache_options(64), policies(*m)[3]);  // streaming 0.5
    compressed.append(saved, Logits::None);
    PromptCache other(1 << 30);
    other.insert(std::make_shared<SessionState>(capture_state(compressed, saved)));
    EXPECT_FALSE(other.lookup(asked, policies(*m)[3]));
  }
}

TEST_F(StateFile, ForeignTruncatedAlteredAndOldFilesAreRefused) {
  c10::InferenceMode guard;
  const std::vector<int32_t> prefix = tokens(20);
  Session s(tiny().model, tiny().model->cache_options(32), policies()[1]);
  s.append(prefix, Logits::None);
  save_state_file(path_, capture_state(s, prefix), info());
  auto expect_refused = [&](const std::string& part, StateFileInfo who) {
    try {
      load_state_file(path_, who);
      ADD_FAILURE() << "accepted; expected an error with '" << part << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_refused("another model", {"0123456789abcdef", "other"});

  std::string bytes = testing::read_file(path_);
  auto write = [&](const std::string& data) { std::ofstream(path_, std::ios::binary | std::ios::trunc) << data; };
  write(bytes.substr(0, bytes.size() - 100));
  expect_refused("truncated", info());
  std::string altered = bytes;
  altered[altered.size() - 5] ^= 0x40;
  write(altered);
  expect_refused("SHA-256", info());
  std::string old = bytes;
  old[10] = 9;  // version field
  write(old);
  expect_refused("version 9", info());
  write("GGUF" + bytes.substr(4));
  expect_refused("not a Sentinel session state file", info());
  write(bytes.substr(0, 30));
  expect_refused("truncated", info());
}

// A compressed session cannot be cut back to a prefix, so a save carries the state after its
// prompt (a checkpoint) as a second record; both come back, and a version 2 file (one record,
// no record count) still loads.
TEST_F(StateFile, CheckpointRecordsRoundTripAndVersion2FilesLoad) {
  c10::InferenceMode guard;
  const std::vector<int32_t> all = tokens(30);
  const PolicyOptions streaming = policies()[3];
  Session s(tiny().model, tiny().model->cache_options(16), streaming);
  s.append(std::span(all.data(), 20), Logits::None);
  const SessionState checkpoint = capture_state(s, std::span(all.data(), 20));
  s.append(std::span(all.data() + 20, 10), Logits::None);
  const SessionState session = capture_state(s, all);
  const std::vector<SessionState> both{session, checkpoint};
  save_state_file(path_, both, info());
  const std::vector<SessionState> loaded = load_state_records(path_, info());
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].tokens, session.tokens);
  EXPECT_EQ(loaded[1].tokens, checkpoint.tokens);
  EXPECT_EQ(loaded[1].keys, checkpoint.keys);
  EXPECT_EQ(load_state_file(path_, info()).tokens, session.tokens);

  // The checkpoint restores and continues like the session it was taken from.
  Session restored(tiny().model, tiny().model->cache_options(16), streaming);
  restore_state(restored, loaded[1]);
  Session fresh(tiny().model, tiny().model->cache_options(16), streaming);
  const at::Tensor expected = fresh.append(all, Logits::All).narrow(0, 20, 10);
  const at::Tensor got = restored.append(std::span(all.data() + 20, 10), Logits::All);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4);

  // Version 2: the same record without the count.
  std::string v3 = state_file_bytes(std::span(&session, 1), info());
  std::string v2 = v3.substr(0, 10) + std::string("\x02\0\0\0", 4) + v3.substr(18);
  EXPECT_EQ(parse_state_file(v2, "old.state", info())[0].tokens, session.tokens);

  // A checkpoint must be an earlier point of its session.
  EXPECT_THROW(save_state_file(path_, std::vector<SessionState>{checkpoint, session}, info()), Error);
}

// A crafted header can neither crash the reader nor make it allocate what the file does not hold:
// each is refused by name (the payload's hash does not cover the header).
TEST_F(StateFile, CraftedHeadersAreRefusedByName) {
  c10::InferenceMode guard;
  const std::vector<int32_t> prefix = tokens(12);
  Session s(tiny().model, tiny().model->cache_options(16), policies()[0]);
  s.append(prefix, Logits::None);
  const SessionState state = capture_state(s, prefix);
  const std::string bytes = state_file_bytes(std::span(&state, 1), info());
  const uint64_t header_size = *reinterpret_cast<const uint64_t*>(bytes.data() + 18);
  const std::string header = bytes.substr(26, header_size);
  auto with = [&](const std::string& key, const std::string& value) {
    nlohmann::json h = nlohmann::json::parse(header);
    h[key] = nlohmann::json::parse(value);
    const std::string text = h.dump();
    const uint64_t n = text.size();
    return bytes.substr(0, 18) + std::string(reinterpret_cast<const char*>(&n), 8) + text + bytes.substr(26 + header_size);
  };
  auto expect_refused = [&](const std::string& data, const std::string& part) {
    try {
      parse_state_file(data, "crafted.state", info());
      ADD_FAILURE() << "accepted; expected an error with '" << part << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  expect_refused(with("n_head_kv", "1e300"), "'n_head_kv' that is not an integer");
  expect_refused(with("n_head_kv", "4611686018427387904"), "'n_head_kv' outside");
  expect_refused(with("row_bytes", "-8"), "'row_bytes' outside");
  expect_refused(with("n_tokens", "1000000000000000"), "'n_tokens' outside");
  expect_refused(with("row_type_id", "99"), "'row_type_id' outside");
  expect_refused(with("layer_cells", "[1]"), "layer sizes");
  expect_refused(with("spans", "[[5, -9223372036854775807]]"), "not a [begin, end] pair");
  expect_refused(with("payload_bytes", "18446744073709551615"), "truncated");
  expect_refused(with("ratio", "\"half\""), "'ratio' that is not a number");
  expect_refused(bytes + "x", "bytes after its last record");
}

// The prompt cache's key holds every option a resumable plan reads: a periodic sentinel state is
// not served to a stream request, nor a state of ratio 0.5 to one of 0.5000001.
TEST(PolicyKey, SeparatesLayoutsAndRatiosToTheLastDigit) {
  PolicyOptions stream;
  stream.method = Method::Sentinel;
  stream.ratio = 0.5;
  stream.span = 4;
  stream.cl_id = 320;
  stream.cr_id = 321;
  PolicyOptions periodic = stream;
  periodic.layout = SpanLayout::Periodic;
  PolicyOptions nearly = stream;
  nearly.ratio = 0.5000001;
  EXPECT_NE(policy_key(stream, 40), policy_key(periodic, 40));
  EXPECT_NE(policy_key(stream, 40), policy_key(nearly, 40));
  EXPECT_EQ(policy_key(stream, 40), policy_key(PolicyOptions(stream), 40));
}

// Restoring replays the compression plan: a state whose cells are not the ones the session's
// options keep (saved under another ratio, say) is refused, even where none of its cells would
// be evicted.
TEST_F(StateFile, RestoreRefusesCellsItsPlanWouldNotKeep) {
  c10::InferenceMode guard;
  const std::vector<int32_t> prefix = tokens(24);
  PolicyOptions half = policies()[3], quarter = half;
  quarter.ratio = 0.25;
  Session s(tiny().model, tiny().model->cache_options(16), half);
  s.append(prefix, Logits::None);
  const SessionState state = capture_state(s, prefix);
  Session other(tiny().model, tiny().model->cache_options(16), quarter);
  try {
    restore_state(other, state);
    ADD_FAILURE() << "restored a 0.5 state under ratio 0.25";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("plan keeps"), std::string::npos) << e.what();
  }
}

// Policies that evict by attention (h2o, sentinel's heavy layout) plan from scores a state file
// does not hold; the stream layout plans from token indices and resumes.
TEST_F(StateFile, PoliciesThatEvictByAttentionAreNotResumable) {
  c10::InferenceMode guard;
  PolicyOptions h2o;
  h2o.method = Method::H2O;
  h2o.ratio = 0.5;
  PolicyOptions heavy;
  heavy.method = Method::Sentinel;
  heavy.layout = SpanLayout::Heavy;
  heavy.ratio = 0.5;
  heavy.cl_id = static_cast<int32_t>(tiny().config.n_vocab);
  heavy.cr_id = heavy.cl_id + 1;
  for (const PolicyOptions& policy : {h2o, heavy}) {
    Session s(tiny().model, tiny().model->cache_options(32), policy);
    EXPECT_FALSE(resumable(policy));
    EXPECT_THROW(s.resume({}, {}), Error);
  }
  PolicyOptions stream = heavy;
  stream.layout = SpanLayout::Stream;
  EXPECT_TRUE(resumable(stream));
}

}  // namespace
}  // namespace sentinel::server
