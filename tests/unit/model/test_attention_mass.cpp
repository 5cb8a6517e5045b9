// The attention mass H2O-style policies read: on the dense path and on the quantized model's
// native step it splits exactly over the queries that count, and both paths agree.
#include <gtest/gtest.h>

#include <vector>

#include "sentinel/engine/model_loader.h"
#include "sentinel/model/decoder.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::source_path;

constexpr int64_t kPast = 9, kNew = 6;  // kNew <= kFewRows: the quantized model takes the native step

// [kPast + kNew] mass of the kNew tokens after a causal prefix of kPast, counting the queries
// `counted` selects (undefined: all).
at::Tensor mass_after_prefix(DecoderModel& model, const at::Tensor& counted) {
  c10::InferenceMode guard;
  KvCache cache(model->config().kv_shape(), model->cache_options(kPast + kNew));
  const at::Tensor ids = at::arange(3, 3 + kPast + kNew, at::kLong) * 7 % model->config().n_vocab;
  CachedInput prefix{ids.narrow(0, 0, kPast), at::arange(kPast, at::kLong), {}, &cache};
  model->forward_cached(std::span(&prefix, 1));
  std::vector<CacheCell> cells;
  for (int64_t i = 0; i < kPast; ++i) cells.push_back(CacheCell{.position = i});
  cache.commit(cells);
  CachedInput step{ids.narrow(0, kPast, kNew), at::arange(kPast, kPast + kNew, at::kLong), {}, &cache, true, counted};
  return model->forward_cached(std::span(&step, 1))[0].attention_mass;
}

TEST(AttentionMass, SplitsOverTheQueriesThatCountOnBothPaths) {
  LoadedModel dense = load_model(source_path("tests/data/tiny/tiny.gguf"));
  LoadOptions options;
  options.backend = Backend::Quantized;
  LoadedModel quantized = load_model(source_path("tests/data/tiny/tiny.gguf"), options);
  ASSERT_TRUE(quantized.model->is_quantized());
  dense.model->set_kv_storage(KvStorage::F32);
  quantized.model->set_kv_storage(KvStorage::F32);
  const at::Tensor odd = at::arange(kNew, at::kLong).remainder(2).to(at::kBool);  // [kNew]
  const at::Tensor even = odd.logical_not();
  const int64_t heads_times_layers = dense.config.n_head * dense.config.n_layer;
  for (LoadedModel* m : {&dense, &quantized}) {
    const at::Tensor all = mass_after_prefix(m->model, {});
    const at::Tensor of_odd = mass_after_prefix(m->model, odd), of_even = mass_after_prefix(m->model, even);
    EXPECT_NEAR(all.sum().item<double>(), static_cast<double>(kNew * heads_times_layers), 1e-2);
    EXPECT_NEAR(of_odd.sum().item<double>(), static_cast<double>(kNew / 2 * heads_times_layers), 1e-2);
    EXPECT_LT((all - of_odd - of_even).abs().max().item<double>(), 1e-4);
    // The last key is the last new token, which only the last (odd) query sees.
    EXPECT_EQ(of_even[kPast + kNew - 1].item<float>(), 0.0f);
    EXPECT_GT(of_odd[kPast + kNew - 1].item<float>(), 0.0f);
  }
  EXPECT_LT((mass_after_prefix(dense.model, odd) - mass_after_prefix(quantized.model, odd)).abs().max().item<double>(),
            1e-3);
}

}  // namespace
}  // namespace sentinel
