// Training data (docs/method.md section 5): the span sampler (seeded, disjoint, within its length
// bounds, near its coverage target, saturating as the authors' does), word spans mapped onto
// tokens exactly, fixed blocks with their layout, and labels on ordinary tokens only.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "sentinel/core/error.h"
#include "sentinel/engine/model_loader.h"
#include "sentinel/model/sentinels.h"
#include "sentinel/train/data.h"
#include "support/test_paths.h"

namespace sentinel {
namespace {

using testing::source_path;

TEST(SpanSampler, SeededDisjointBoundedAndNearItsTarget) {
  SpanSamplerOptions o;
  o.ratio = 0.4;
  std::mt19937_64 a(5), b(5);
  const auto spans = sample_spans(1000, o, a);
  const auto again = sample_spans(1000, o, b);
  ASSERT_EQ(spans.size(), again.size());
  int64_t covered = 0, removed = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    EXPECT_EQ(spans[i].begin, again[i].begin);
    EXPECT_GE(spans[i].length(), o.min_length);
    EXPECT_LE(spans[i].length(), o.max_length);
    EXPECT_TRUE(i == 0 || spans[i].begin >= spans[i - 1].end) << "overlap at span " << i;
    EXPECT_LE(spans[i].end, 1000);
    covered += spans[i].length();
    removed += spans[i].length() - 1;
  }
  const double avg = 13.5, target = 0.4 * avg / (avg - 1);
  EXPECT_GE(covered, static_cast<int64_t>(target * 1000));       // reached the coverage target
  EXPECT_LT(covered, static_cast<int64_t>(target * 1000) + 25);  // and stopped right after it
  EXPECT_NEAR(static_cast<double>(removed) / 1000, 0.4, 0.05);
  std::mt19937_64 c(5);
  EXPECT_TRUE(sample_spans(29, o, c).empty());  // rows under 30 units get no spans
}

TEST(SpanSampler, HighTargetsSaturateAndTheAchievedRatioSaysSo) {
  SpanSamplerOptions o;
  o.ratio = 0.9;
  std::mt19937_64 rng(1);
  int64_t removed = 0, n = 0;
  for (int row = 0; row < 50; ++row, n += 200)
    for (const Span& s : sample_spans(200, o, rng)) removed += s.length() - 1;
  const double achieved = static_cast<double>(removed) / static_cast<double>(n);
  EXPECT_LT(achieved, 0.85);  // random placement jams well before 0.9 removed
  EXPECT_GT(achieved, 0.4);
}

TEST(SpanSampler, BadOptionsNameTheFlag) {
  SpanSamplerOptions o;
  o.max_length = 1;
  try {
    o.validate();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--max-span"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_span_unit("char"), Error);
}

std::string sample_text(int rows) {
  std::string text;
  for (int r = 0; r < rows; ++r) {
    for (int w = 0; w < 40; ++w) text += (w ? " " : "") + std::string(w % 3 ? "fox" : "lazy") + std::to_string((r * 7 + w) % 11);
    text += r % 4 == 3 ? "\n\n" : "\n";
  }
  return text;
}

TEST(TrainCorpus, WordSpansCoverWholeWordsAndTokensAreTheText) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  const std::string text = sample_text(8);
  SpanSamplerOptions o;
  o.ratio = 0.5;
  o.max_length = 6;
  const TrainCorpus corpus = build_corpus(*m.tokenizer, text, &o, 9);
  EXPECT_EQ(m.tokenizer->decode(corpus.tokens), text);
  EXPECT_EQ(corpus.n_rows, 10);  // 8 rows + 2 empty lines
  EXPECT_EQ(corpus.n_rows_with_spans, 8);
  EXPECT_GT(corpus.spans.size(), 8u);
  for (const Span& s : corpus.spans) {
    // Each span starts at a word: its first token begins with a space or starts a row.
    const std::string first = m.tokenizer->decode(std::span(corpus.tokens).subspan(s.begin, 1));
    const bool row_start = s.begin == 0 || m.tokenizer->decode(std::span(corpus.tokens).subspan(s.begin - 1, 1)).ends_with("\n");
    EXPECT_TRUE(first.starts_with(" ") || row_start) << "span at token " << s.begin << " starts mid-word: '" << first << "'";
  }
  EXPECT_GT(corpus.achieved_ratio(), 0.2);
  const TrainCorpus again = build_corpus(*m.tokenizer, text, &o, 9);
  EXPECT_EQ(again.tokens, corpus.tokens);
  ASSERT_EQ(again.spans.size(), corpus.spans.size());
  for (size_t i = 0; i < again.spans.size(); ++i) EXPECT_EQ(again.spans[i].begin, corpus.spans[i].begin);
  o.unit = SpanUnit::Token;
  const TrainCorpus tokens = build_corpus(*m.tokenizer, text, &o, 9);
  EXPECT_EQ(m.tokenizer->decode(tokens.tokens), text);
}

// Hard-wrapped text (a Gutenberg book): no line reaches 30 words, so line rows give no spans;
// paragraph rows (lines up to the blank lines that end them) do, and keep the text intact.
TEST(TrainCorpus, ParagraphRowsGiveSpansToHardWrappedText) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  std::string text = "\n";  // a leading blank line joins the first paragraph
  for (int paragraph = 0; paragraph < 3; ++paragraph) {
    for (int line = 0; line < 5; ++line) {
      for (int w = 0; w < 10; ++w) text += (w ? " " : "") + std::string("word") + std::to_string((paragraph + line + w) % 7);
      text += "\n";
    }
    text += paragraph == 1 ? "\n \n" : "\n";  // blank lines, one holding a space
  }
  SpanSamplerOptions o;
  o.ratio = 0.5;
  o.max_length = 6;
  const TrainCorpus lines = build_corpus(*m.tokenizer, text, &o, 3, RowSplit::Line);
  EXPECT_EQ(lines.n_rows, 20);
  EXPECT_EQ(lines.n_rows_with_spans, 0);
  const TrainCorpus paragraphs = build_corpus(*m.tokenizer, text, &o, 3, RowSplit::Paragraph);
  EXPECT_EQ(paragraphs.n_rows, 3);
  EXPECT_EQ(paragraphs.n_rows_with_spans, 3);
  EXPECT_GT(paragraphs.achieved_ratio(), 0.3);
  EXPECT_EQ(m.tokenizer->decode(paragraphs.tokens), text);
  EXPECT_EQ(parse_row_split("paragraph"), RowSplit::Paragraph);
  EXPECT_THROW(parse_row_split("sentence"), Error);
}

TEST(TrainData, FixedBlocksWithSentinelLayoutAndLabelsOnOrdinaryTokens) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  SpanSamplerOptions o;
  o.ratio = 0.5;
  o.max_length = 6;
  TrainCorpus corpus = build_corpus(*m.tokenizer, sample_text(8), &o, 9);
  const SentinelTokens st = sentinel_tokens(m.config);
  TrainDataOptions d;
  d.block = 40;
  d.cl_id = st.cl;
  d.cr_id = st.cr;
  const int64_t n_tokens = static_cast<int64_t>(corpus.tokens.size()), n_spans = static_cast<int64_t>(corpus.spans.size());
  const TrainData data(std::move(corpus), d);
  EXPECT_EQ(data.n_elements(), n_tokens + 2 * n_spans);
  EXPECT_EQ(data.n_blocks(), data.n_elements() / 40);
  const std::vector<int64_t> idx = {0, 3};
  const TrainBatch batch = data.batch(idx);
  EXPECT_EQ(batch.ids.sizes(), (at::IntArrayRef{2, 40}));
  EXPECT_EQ(batch.mask.sizes(), (at::IntArrayRef{2, 40, 40}));
  for (int64_t b = 0; b < 2; ++b) {
    const MaskedSequence block = data.block(idx[b]);
    const at::Tensor labels = batch.labels[b];
    // Sentinels take no loss; each ordinary row's label is the next ordinary token; the last has none.
    for (size_t r = 0; r < block.ordinary_rows.size(); ++r) {
      const int64_t row = block.ordinary_rows[r];
      const int64_t want = r + 1 < block.ordinary_rows.size() ? block.elements[block.ordinary_rows[r + 1]].id : kIgnoreLabel;
      EXPECT_EQ(labels[row].item<int64_t>(), want) << "block " << idx[b] << " row " << row;
    }
    for (int64_t row = 0; row < 40; ++row)
      if (block.elements[row].ordinary_index < 0) EXPECT_EQ(labels[row].item<int64_t>(), kIgnoreLabel);
    EXPECT_EQ(block.positions[0][0].item<int64_t>(), 0);  // every block restarts its positions
  }
  EXPECT_EQ(batch.n_targets, batch.labels.ne(kIgnoreLabel).sum().item<int64_t>());
  EXPECT_TRUE(batch.ids.ge(st.cl).any().item<bool>()) << "no sentinel in the sampled blocks";
}

TEST(TrainData, BaselinesHaveNoSentinelsAndTheirOwnMasks) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  for (Method method : {Method::Local, Method::Scattered}) {
    TrainDataOptions d;
    d.method = method;
    d.ratio = 0.5;
    d.block = 32;
    const TrainData data(build_corpus(*m.tokenizer, sample_text(4), nullptr, 0), d);
    EXPECT_EQ(data.n_elements(), static_cast<int64_t>(data.corpus().tokens.size()));
    const MaskedSequence block = data.block(1);
    const at::Tensor causal = at::ones({32, 32}, at::kBool).tril();
    EXPECT_FALSE(at::equal(block.mask[0], causal)) << method_name(method) << " mask is plain causal";
    EXPECT_TRUE(at::equal(block.mask[0].logical_and(causal.logical_not()), at::zeros({32, 32}, at::kBool)));
  }
}

// The stream layout reads each sequence with the inference schedule: the policy a session would
// run (sinks, then spans compressed as the budget needs), its ratio and span drawn per sequence.
// Stream sequences of 64 tokens, ratio in [0.3, 0.7], spans of 4-9 after 3 sinks.
TrainDataOptions stream_options(const SentinelTokens& st, SpanLayout span_layout) {
  TrainDataOptions d;
  d.layout = TrainLayout::Stream;
  d.span_layout = span_layout;
  d.seq_len = 64;
  d.ratio_min = 0.3;
  d.ratio_max = 0.7;
  d.span_min = 4;
  d.span_max = 9;
  d.sinks = 3;
  d.seed = 11;
  d.cl_id = st.cl;
  d.cr_id = st.cr;
  return d;
}

TEST(TrainData, StreamSequencesAreLaidOutByTheInferenceScheduler) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  const SentinelTokens st = sentinel_tokens(m.config);
  const TrainDataOptions d = stream_options(st, SpanLayout::Stream);
  const TrainData data(build_corpus(*m.tokenizer, sample_text(8), nullptr, 0), d);
  ASSERT_EQ(data.n_blocks(), static_cast<int64_t>(data.corpus().tokens.size()) / 64);
  std::set<int64_t> spans;
  for (int64_t i = 0; i < data.n_blocks(); ++i) {
    const PolicyOptions p = stream_sequence_policy(d, i);
    EXPECT_EQ(p.layout, SpanLayout::Stream);
    EXPECT_GE(p.ratio, 0.3);
    EXPECT_LT(p.ratio, 0.7);
    EXPECT_GE(p.span, 4);
    EXPECT_LE(p.span, 9);
    spans.insert(p.span);
    auto policy = make_policy(p);
    const std::span<const int32_t> tokens = std::span<const int32_t>(data.corpus().tokens).subspan(i * 64, 64);
    const MaskedSequence want = masked_sequence(*policy, tokens);
    const MaskedSequence got = data.block(i);
    ASSERT_TRUE(at::equal(got.ids, want.ids)) << "sequence " << i;
    ASSERT_TRUE(at::equal(got.mask, want.mask)) << "sequence " << i;
    EXPECT_EQ(got.ordinary_rows.size(), 64u);
    for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(got.elements[k].cell.span, -1) << "a sink is inside a span";
  }
  EXPECT_GT(spans.size(), 1u) << "the span length is not drawn per sequence";
  // Every sequence holds 64 ordinary tokens: the batch carries them for the teacher, in order.
  const std::vector<int64_t> idx = {0, 1};
  const TrainBatch batch = data.batch(idx);
  ASSERT_TRUE(batch.plain.defined());
  EXPECT_EQ(batch.plain.sizes(), (at::IntArrayRef{2, 64}));
  EXPECT_EQ(batch.plain[1][5].item<int64_t>(), data.corpus().tokens[64 + 5]);
  EXPECT_EQ(batch.n_targets, 2 * 63);
}

// The heavy layout evicts by attention: each sequence is laid out by reading it with the model
// (the reader the trainer binds), and without a reader the data says what is missing.
TEST(TrainData, HeavySequencesAreLaidOutByReadingThem) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  install_sentinels(m.model);
  const SentinelTokens st = sentinel_tokens(m.config);
  TrainDataOptions d = stream_options(st, SpanLayout::Heavy);
  TrainData data(build_corpus(*m.tokenizer, sample_text(8), nullptr, 0), d);
  ASSERT_TRUE(data.needs_reader());
  try {
    data.block(0);
    FAIL() << "a heavy sequence was laid out without reading it";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("evicts by attention"), std::string::npos) << e.what();
  }
  int64_t reads = 0;
  data.set_reader([&](const PolicyOptions& p, std::span<const int32_t> tokens) {
    ++reads;
    EXPECT_EQ(p.layout, SpanLayout::Heavy);
    return read_and_replay(m.model, p, tokens, kAttentionReadChunk);
  });
  const MaskedSequence block = data.block(1);
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(block.ordinary_rows.size(), 64u);
  const PolicyOptions p = stream_sequence_policy(d, 1);
  const MaskedSequence want =
      read_and_replay(m.model, p, std::span<const int32_t>(data.corpus().tokens).subspan(64, 64), kAttentionReadChunk);
  EXPECT_TRUE(at::equal(block.mask, want.mask));
  d.span_layout = SpanLayout::Stream;
  EXPECT_FALSE(TrainData(build_corpus(*m.tokenizer, sample_text(8), nullptr, 0), d).needs_reader());
}

// Blocks of different lengths are padded: the padding sees only itself and no real row sees it,
// so every real row's logits, and the loss, are those of the block alone.
TEST(TrainData, PaddingABatchChangesNoRealRow) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  install_sentinels(m.model);
  const SentinelTokens st = sentinel_tokens(m.config);
  PolicyOptions p;
  p.method = Method::Sentinel;
  p.cl_id = st.cl;
  p.cr_id = st.cr;
  p.spans = {Span{3, 9}, Span{12, 20}};
  const std::vector<int32_t> tokens = {5, 9, 14, 3, 8, 22, 17, 6, 2, 11, 19, 4, 7, 13, 21, 10, 15, 1, 12, 18, 16, 20};
  auto long_policy = make_policy(p);
  const MaskedSequence longer = masked_sequence(*long_policy, tokens);
  p.spans = {};
  auto short_policy = make_policy(p);
  const MaskedSequence shorter = masked_sequence(*short_policy, std::span(tokens).subspan(0, 10));
  const std::vector<MaskedSequence> both = {longer, shorter};
  const TrainBatch batch = make_batch(both);
  const std::vector<MaskedSequence> alone = {shorter};
  const TrainBatch single = make_batch(alone);
  ASSERT_EQ(batch.ids.size(1), static_cast<int64_t>(longer.elements.size()));
  EXPECT_FALSE(batch.plain.defined()) << "different ordinary counts have no common teacher layout";
  at::NoGradGuard no_grad;
  const at::Tensor padded = m.model->forward(ForwardInput{batch.ids, batch.positions, batch.mask}).hidden;
  const at::Tensor own = m.model->forward(ForwardInput{single.ids, single.positions, single.mask}).hidden;
  const int64_t n = single.ids.size(1);
  EXPECT_LT((padded[1].slice(0, 0, n) - own[0]).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(batch.labels[1].slice(0, n).ne(kIgnoreLabel).sum().item<int64_t>(), 0) << "padding takes loss";
}

// A recurrence: in a drawn fraction of the sequences the last copy_len tokens are replaced by a
// passage from the first half (after the sinks), laid out as inference would read that text, and
// the teacher reads the same tokens; the other sequences are the corpus as it is.
TEST(TrainData, SomeStreamSequencesEndWithARecurrenceOfTheirFirstHalf) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  const SentinelTokens st = sentinel_tokens(m.config);
  TrainDataOptions d = stream_options(st, SpanLayout::Stream);
  d.copy_rate = 0.5;
  d.copy_len = 9;
  const TrainData data(build_corpus(*m.tokenizer, sample_text(8), nullptr, 0), d);
  const std::vector<int32_t>& corpus = data.corpus().tokens;
  int64_t with = 0;
  for (int64_t i = 0; i < data.n_blocks(); ++i) {
    std::vector<int32_t> want(corpus.begin() + i * 64, corpus.begin() + (i + 1) * 64);
    if (const int64_t source = recurrence_source(d, i); source >= 0) {
      ++with;
      EXPECT_GE(source, 3) << "the passage starts among the sinks";
      EXPECT_LE(source + 9, 32) << "the passage reaches past the first half";
      std::copy_n(want.begin() + source, 9, want.end() - 9);
    }
    auto policy = make_policy(stream_sequence_policy(d, i));
    const MaskedSequence got = data.block(i);
    ASSERT_TRUE(at::equal(got.ids, masked_sequence(*policy, want).ids)) << "sequence " << i;
    const std::vector<int64_t> one = {i};
    const at::Tensor plain = data.batch(one).plain[0];  // what the teacher reads
    for (int64_t t = 0; t < 64; ++t) ASSERT_EQ(plain[t].item<int64_t>(), want[t]) << "sequence " << i << " token " << t;
  }
  EXPECT_GT(with, 0) << "no sequence was drawn to end with a recurrence";
  EXPECT_LT(with, data.n_blocks()) << "every sequence ends with a recurrence at a rate of 0.5";
  d.copy_rate = 0.0;
  for (int64_t i = 0; i < data.n_blocks(); ++i) EXPECT_EQ(recurrence_source(d, i), -1);
}

TEST(TrainData, StreamOptionsAreValidated) {
  TrainDataOptions d;
  d.layout = TrainLayout::Stream;
  d.cl_id = 0;
  d.cr_id = 1;
  d.ratio_min = 0.8;
  d.ratio_max = 0.4;
  EXPECT_THROW(d.validate(), Error);
  d.ratio_min = 0.4;
  d.span_min = 1;
  EXPECT_THROW(d.validate(), Error);
  d.span_min = 8;
  d.seq_len = 16;
  EXPECT_THROW(d.validate(), Error);  // sinks + the longest span do not fit
  d.seq_len = 64;
  d.copy_rate = 1.5;
  EXPECT_THROW(d.validate(), Error);
  d.copy_rate = 0.5;
  d.copy_len = 29;  // 4 sinks + 29 > 32, the first half
  EXPECT_THROW(d.validate(), Error);
  d.copy_len = 28;
  EXPECT_NO_THROW(d.validate());
  d.older_rank = OlderRank::Surprisal;  // ranks the heavy layout's older tokens: refused on the stream layout
  EXPECT_THROW(d.validate(), Error);
  d.span_layout = SpanLayout::Heavy;
  EXPECT_NO_THROW(d.validate());
  EXPECT_EQ(stream_sequence_policy(d, 3).older_rank, OlderRank::Surprisal) << "each sequence is read with it";
  EXPECT_EQ(parse_train_layout("stream"), TrainLayout::Stream);
  EXPECT_THROW(parse_train_layout("windows"), Error);
}

TEST(TrainData, TooLittleTextIsRefusedWithSizes) {
  LoadedModel m = load_model(source_path("tests/data/tiny/hf"));
  TrainDataOptions d;
  d.method = Method::Local;
  d.block = 4096;
  try {
    TrainData data(build_corpus(*m.tokenizer, "a few words\n", nullptr, 0), d);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--block"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace sentinel
