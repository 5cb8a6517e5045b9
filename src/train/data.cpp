// Training corpus, block layout and labels (docs/method.md sections 2-5).
#include "sentinel/train/data.h"

#include <algorithm>
#include <cctype>
#include <random>

#include "sentinel/core/error.h"

namespace sentinel {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// A row cut before each word's single preceding space: the first piece also carries any leading
// whitespace, the last one the trailing whitespace and newline. Concatenated, the pieces are the row.
std::vector<std::string_view> word_pieces(std::string_view row) {
  std::vector<size_t> starts;  // word starts
  for (size_t i = 0; i < row.size(); ++i)
    if (!is_space(row[i]) && (i == 0 || is_space(row[i - 1]))) starts.push_back(i);
  std::vector<std::string_view> pieces;
  if (starts.empty()) {
    if (!row.empty()) pieces.push_back(row);
    return pieces;
  }
  std::vector<size_t> cuts = {0};
  for (size_t w = 1; w < starts.size(); ++w) cuts.push_back(row[starts[w] - 1] == ' ' ? starts[w] - 1 : starts[w]);
  cuts.push_back(row.size());
  for (size_t w = 0; w + 1 < cuts.size(); ++w) pieces.push_back(row.substr(cuts[w], cuts[w + 1] - cuts[w]));
  return pieces;
}

bool is_blank(std::string_view line) {
  for (char c : line)
    if (!is_space(c)) return false;
  return true;
}

// The end of the line starting at `at` (past its newline).
size_t line_end(std::string_view text, size_t at) {
  const size_t newline = text.find('\n', at);
  return newline == std::string_view::npos ? text.size() : newline + 1;
}

// The end of the row starting at `at`: one line, or a paragraph with the blank lines after it.
size_t row_end(std::string_view text, size_t at, RowSplit rows) {
  size_t end = line_end(text, at);
  if (rows == RowSplit::Line) return end;
  bool previous_blank = is_blank(text.substr(at, end - at));
  bool seen_text = !previous_blank;
  while (end < text.size()) {
    const size_t next = line_end(text, end);
    const bool blank = is_blank(text.substr(end, next - end));
    if (!blank && seen_text && previous_blank) break;  // the next paragraph starts here
    seen_text = seen_text || !blank;
    previous_blank = blank;
    end = next;
  }
  return end;
}

}  // namespace

RowSplit parse_row_split(const std::string& name) {
  if (name == "line") return RowSplit::Line;
  if (name == "paragraph") return RowSplit::Paragraph;
  fail("unknown row split \"", name, "\": use line or paragraph");
}

double TrainCorpus::achieved_ratio() const {
  if (tokens.empty()) return 0.0;
  int64_t removed = 0;
  for (const Span& s : spans) removed += s.length() - 1;
  return static_cast<double>(removed) / static_cast<double>(tokens.size());
}

void TrainCorpus::truncate(int64_t n) {
  if (static_cast<int64_t>(tokens.size()) <= n) return;
  tokens.resize(n);
  std::erase_if(spans, [&](const Span& s) { return s.end > n; });
}

TrainCorpus build_corpus(const Tokenizer& tokenizer, std::string_view text, const SpanSamplerOptions* sampler,
                         uint64_t seed, RowSplit rows) {
  if (sampler != nullptr) sampler->validate();
  std::mt19937_64 rng(seed);
  TrainCorpus corpus;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = row_end(text, at, rows);
    const std::string_view row = text.substr(at, end - at);
    at = end;
    ++corpus.n_rows;
    const auto first = static_cast<int64_t>(corpus.tokens.size());
    std::vector<Span> row_spans;
    if (sampler != nullptr && sampler->unit == SpanUnit::Word) {
      std::vector<int64_t> word_start;  // token index of each word piece, then the row end
      for (std::string_view piece : word_pieces(row)) {
        word_start.push_back(static_cast<int64_t>(corpus.tokens.size()));
        const auto ids = tokenizer.encode(piece, /*add_bos=*/false, SpecialTokens::Ignore);
        corpus.tokens.insert(corpus.tokens.end(), ids.begin(), ids.end());
      }
      word_start.push_back(static_cast<int64_t>(corpus.tokens.size()));
      const auto n_words = static_cast<int64_t>(word_start.size()) - 1;
      for (const Span& s : sample_spans(n_words, *sampler, rng)) {
        const Span tokens{word_start[s.begin], word_start[s.end]};
        if (tokens.length() >= 2) row_spans.push_back(tokens);  // words that tokenize to nothing
      }
    } else {
      const auto ids = tokenizer.encode(row, /*add_bos=*/false, SpecialTokens::Ignore);
      corpus.tokens.insert(corpus.tokens.end(), ids.begin(), ids.end());
      if (sampler != nullptr)
        for (const Span& s : sample_spans(static_cast<int64_t>(ids.size()), *sampler, rng))
          row_spans.push_back(Span{first + s.begin, first + s.end});
    }
    if (!row_spans.empty()) ++corpus.n_rows_with_spans;
    corpus.spans.insert(corpus.spans.end(), row_spans.begin(), row_spans.end());
  }
  return corpus;
}

at::Tensor next_ordinary_labels(const MaskedSequence& block) {
  const int64_t n = static_cast<int64_t>(block.elements.size());
  at::Tensor labels = at::full({n}, kIgnoreLabel, at::kLong);
  auto l = labels.accessor<int64_t, 1>();
  const auto& rows = block.ordinary_rows;
  for (size_t i = 0; i + 1 < rows.size(); ++i) l[rows[i]] = block.elements[rows[i + 1]].id;
  return labels;
}

TrainBatch make_batch(std::span<const MaskedSequence> blocks) {
  check(!blocks.empty(), "a training batch needs at least one block");
  int64_t n = 0;
  for (const MaskedSequence& b : blocks) n = std::max<int64_t>(n, static_cast<int64_t>(b.elements.size()));
  std::vector<at::Tensor> ids, positions, masks, labels, plain;
  bool same_ordinary = true;
  for (const MaskedSequence& b : blocks) {
    const int64_t len = static_cast<int64_t>(b.elements.size()), pad = n - len;
    at::Tensor mask = at::eye(n, at::kBool);  // padding rows: themselves only
    mask.slice(0, 0, len).slice(1, 0, len).copy_(b.mask[0]);
    ids.push_back(at::constant_pad_nd(b.ids[0], {0, pad}, 0));
    positions.push_back(at::constant_pad_nd(b.positions[0], {0, pad}, 0));
    masks.push_back(mask);
    labels.push_back(at::constant_pad_nd(next_ordinary_labels(b), {0, pad}, kIgnoreLabel));
    std::vector<int64_t> ordinary;
    for (int64_t row : b.ordinary_rows) ordinary.push_back(b.elements[row].id);
    same_ordinary = same_ordinary && ordinary.size() == blocks[0].ordinary_rows.size();
    plain.push_back(at::tensor(ordinary, at::kLong));
  }
  TrainBatch batch{at::stack(ids), at::stack(positions), at::stack(masks), at::stack(labels), 0, {}, 0};
  for (const MaskedSequence& b : blocks) batch.n_elements += static_cast<int64_t>(b.elements.size());
  if (same_ordinary) batch.plain = at::stack(plain);
  batch.n_targets = batch.labels.ne(kIgnoreLabel).sum().item<int64_t>();
  return batch;
}

TrainLayout parse_train_layout(const std::string& name) {
  if (name == "blocks") return TrainLayout::Blocks;
  if (name == "stream") return TrainLayout::Stream;
  fail("unknown training layout '", name, "': use blocks (the paper's random spans in fixed blocks) or stream ",
       "(sequences read with the inference schedule)");
}

void TrainDataOptions::validate() const {
  // Every method with a fixed mask lays out; h2o decides from attention scores as it reads.
  check(method != Method::H2O, "h2o has no fixed mask, so it cannot be laid out in blocks; evaluate it streaming");
  check(block >= 2, "--block must be >= 2 elements, got ", block);
  check(ratio >= 0.0 && ratio < 1.0, "--ratio must be in [0, 1), got ", ratio);
  check(method != Method::Sentinel || (cl_id >= 0 && cr_id >= 0), "sentinel training needs the <CL>/<CR> ids");
  check(stride_share == 0.0 || (layout == TrainLayout::Stream && span_layout == SpanLayout::Heavy &&
                               method == Method::Sentinel),
        "--stride-share splits the heavy layout's older budget: it needs --layout heavy and --method sentinel");
  check(older_rank == OlderRank::Attention || (layout == TrainLayout::Stream && span_layout == SpanLayout::Heavy &&
                                               method == Method::Sentinel),
        "--older-rank ranks the heavy layout's older tokens: it needs --layout heavy and --method sentinel");
  check(copy_rate == 0.0 || layout == TrainLayout::Stream, "--copy-rate ends sequences with a recurrence; the blocks ",
        "layout has no sequences to end: use --layout stream or heavy");
  if (layout == TrainLayout::Stream) {
    check(seq_len >= 2, "--seq-len must be >= 2 tokens, got ", seq_len);
    check(ratio_min > 0.0 && ratio_min <= ratio_max && ratio_max < 1.0, "--ratio-range must be 0 < LO <= HI < 1, got ",
          ratio_min, ":", ratio_max);
    check(span_min >= 2 && span_min <= span_max, "--span-range must be 2 <= LO <= HI tokens, got ", span_min, ":",
          span_max);
    check(sinks >= 0 && sinks + span_max < seq_len, "--sinks ", sinks, " plus the longest span ", span_max,
          " must fit in a --seq-len ", seq_len, " sequence");
    check(copy_rate >= 0.0 && copy_rate <= 1.0, "--copy-rate must be in [0, 1] (a fraction of the sequences), got ",
          copy_rate);
    check(copy_rate == 0.0 || (copy_len >= 2 && sinks + copy_len <= seq_len / 2), "--copy-len ", copy_len,
          " must be >= 2 and fit, after --sinks ", sinks, ", in the first half of a --seq-len ", seq_len,
          " sequence (the recurrence copies a passage from there)");
    check(span_layout != SpanLayout::Periodic, "the stream training layout schedules spans as inference does "
          "(stream or heavy); the paper's periodic spans train with --layout blocks");
  }
}

namespace {

// splitmix64: well-mixed, platform-independent draws from (seed, index).
uint64_t mix(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A draw of mix() as a double uniform in [0, 1) (its top 53 bits).
double unit_interval(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

}  // namespace

PolicyOptions stream_sequence_policy(const TrainDataOptions& o, int64_t index) {
  const uint64_t a = mix(o.seed, 2 * static_cast<uint64_t>(index)), b = mix(o.seed, 2 * static_cast<uint64_t>(index) + 1);
  PolicyOptions p;
  p.method = o.method;
  p.layout = o.span_layout;
  p.stride_share = o.stride_share;  // validate(): sentinel and the heavy layout only
  p.older_rank = o.older_rank;
  p.span = o.span_min + static_cast<int64_t>(b % static_cast<uint64_t>(o.span_max - o.span_min + 1));
  const double u = unit_interval(a);
  p.ratio = std::min(o.ratio_min + u * (o.ratio_max - o.ratio_min), static_cast<double>(p.span - 1) / p.span);
  p.sinks = o.sinks;
  p.window = o.method == Method::Local ? o.window : 0;
  p.seed = mix(o.seed ^ 0x5EED, static_cast<uint64_t>(index));
  p.cl_id = o.cl_id;
  p.cr_id = o.cr_id;
  return p;
}

int64_t recurrence_source(const TrainDataOptions& o, int64_t index) {
  if (o.copy_rate <= 0.0) return -1;
  const uint64_t a = mix(o.seed ^ 0xC0B1, 2 * static_cast<uint64_t>(index));
  const uint64_t b = mix(o.seed ^ 0xC0B1, 2 * static_cast<uint64_t>(index) + 1);
  if (unit_interval(a) >= o.copy_rate) return -1;
  // Anywhere after the sinks that leaves the passage inside the first half, so it ends at least
  // seq_len / 2 - copy_len tokens before the recurrence: beyond the heavy layout's raw window (half
  // the budget) at every ratio from 0.4.
  const int64_t first = o.sinks, last = o.seq_len / 2 - o.copy_len;
  return first + static_cast<int64_t>(b % static_cast<uint64_t>(last - first + 1));
}

namespace {

PolicyOptions block_policy(const TrainDataOptions& o, uint64_t block_index) {
  PolicyOptions p;
  p.method = o.method;
  p.ratio = o.method == Method::Sentinel ? 0.0 : o.ratio;  // sentinel: explicit spans (or none)
  p.window = o.method == Method::Local ? o.window : 0;
  p.seed = mix(o.seed, block_index);  // a different kept pattern per block, the same on every run
  p.cl_id = o.cl_id;
  p.cr_id = o.cr_id;
  return p;
}

}  // namespace

TrainData::TrainData(TrainCorpus corpus, const TrainDataOptions& options)
    : corpus_(std::move(corpus)), options_(options) {
  options_.validate();
  if (options_.layout == TrainLayout::Stream) {
    n_blocks_ = static_cast<int64_t>(corpus_.tokens.size()) / options_.seq_len;
    check(n_blocks_ >= 1, "the training data has ", corpus_.tokens.size(), " tokens, fewer than one --seq-len of ",
          options_.seq_len, "; give more text or a shorter --seq-len");
    return;
  }
  PolicyOptions layout = block_policy(options_, 0);
  if (options_.method == Method::Sentinel) layout.spans = corpus_.spans;
  elements_ = make_policy(layout)->expand(corpus_.tokens, 0);
  n_blocks_ = static_cast<int64_t>(elements_.size()) / options_.block;
  check(n_blocks_ >= 1, "the training data lays out as ", elements_.size(), " elements (", corpus_.tokens.size(),
        " tokens), fewer than one --block of ", options_.block, "; give more text or a smaller --block");
}

MaskedSequence TrainData::block(int64_t index) const {
  check(index >= 0 && index < n_blocks_, "block ", index, " out of range [0, ", n_blocks_, ")");
  if (options_.layout == TrainLayout::Stream) {
    const PolicyOptions layout = stream_sequence_policy(options_, index);
    auto tokens = std::span<const int32_t>(corpus_.tokens).subspan(index * options_.seq_len, options_.seq_len);
    std::vector<int32_t> with_recurrence;  // [seq_len] the sequence, its end replaced by the passage
    if (const int64_t source = recurrence_source(options_, index); source >= 0) {
      with_recurrence.assign(tokens.begin(), tokens.end());
      std::copy_n(tokens.begin() + source, options_.copy_len, with_recurrence.end() - options_.copy_len);
      tokens = with_recurrence;
    }
    if (reads_attention(layout)) {
      check(reader_ != nullptr, "--layout ", span_layout_name(layout.layout), " evicts by attention: its sequences ",
            "are laid out by reading them with the model (TrainData::set_reader)");
      return reader_(layout, tokens);
    }
    return masked_sequence(*make_policy(layout), tokens);
  }
  const auto policy = make_policy(block_policy(options_, static_cast<uint64_t>(index)));
  return masked_block(*policy, std::span<const Element>(elements_).subspan(index * options_.block, options_.block));
}

bool TrainData::needs_reader() const {
  return options_.layout == TrainLayout::Stream && reads_attention(stream_sequence_policy(options_, 0));
}

TrainBatch TrainData::batch(std::span<const int64_t> indices) const {
  std::vector<MaskedSequence> blocks;
  for (int64_t i : indices) blocks.push_back(block(i));
  return make_batch(blocks);
}

}  // namespace sentinel
