// Training examples (docs/method.md sections 2-5), in one of two layouts (TrainLayout):
//   blocks: the paper's. Plain text is tokenized row by row, spans are sampled (spans.h), the whole
//     stream is laid out with <CL>/<CR> by the policy, and the layout is cut into fixed blocks of
//     `block` elements, sentinels included (as the authors group their spliced text into 256-token
//     blocks); each block gets its own positions and dense mask (masked_block).
//   stream: the inference schedule. The text is cut into sequences of `seq_len` ordinary tokens and
//     each is laid out by a fresh policy exactly as `sentinel ppl` reads one window (masked_sequence:
//     for sentinel the stream scheduler of policies/sentinel.h, sinks + window + spans), with the
//     ratio and span length drawn per sequence from a range, so that one adapter serves many.
//     A sentinel layout that evicts by attention (heavy) has no mask before the text is read: each
//     sequence is read by the model being trained and replayed (read_and_replay), so it trains on
//     the schedule it produces itself.
// Labels: the next ordinary token; sentinels and a block's last ordinary token take no loss. Not
// the optimiser loop (trainer.h).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sentinel/engine/masked_forward.h"
#include "sentinel/tokenizer/bpe.h"
#include "sentinel/train/spans.h"

namespace sentinel {

inline constexpr int64_t kIgnoreLabel = -100;  // label of a position that takes no loss (as in PyTorch)

// How a text is cut into rows, the units spans are sampled in (the authors' ">= 30 words" rule is
// per row). Line: each line, keeping its newline (WikiText keeps a paragraph per line). Paragraph:
// lines up to and including the blank lines that end them, for hard-wrapped text such as the
// Gutenberg books, whose 70-character lines would otherwise never reach 30 words.
enum class RowSplit { Line, Paragraph };
RowSplit parse_row_split(const std::string& name);  // "line" | "paragraph"; throws naming both

// A text tokenized row by row (rows keep their newlines), with its spans.
struct TrainCorpus {
  std::vector<int32_t> tokens;  // [n] every row's tokens, concatenated
  std::vector<Span> spans;      // sorted, disjoint [begin, end) token indices compressed by one <CR> each
  int64_t n_rows = 0;
  int64_t n_rows_with_spans = 0;
  // Fraction of the tokens removed from the KV cache by the spans: sum(length - 1) / n tokens.
  double achieved_ratio() const;
  // Keeps the first n tokens (when there are more) and the spans that end within them.
  void truncate(int64_t n);
};

// Tokenizes `text` (no BOS, special-token text taken literally) and, when `sampler` is given,
// samples spans per row with a generator seeded by `seed`. Word spans: each row is tokenized word
// by word (a word with the single space before it, so the pieces are the pre-tokenizer's own
// split) to map word spans onto token spans exactly.
TrainCorpus build_corpus(const Tokenizer& tokenizer, std::string_view text, const SpanSamplerOptions* sampler,
                         uint64_t seed, RowSplit rows = RowSplit::Line);

// A batch of blocks of equal length N: what one forward pass of training reads.
// A batch of blocks padded to one length N: what one forward pass of training reads.
struct TrainBatch {
  at::Tensor ids;        // [B, N] int64; sentinels are n_vocab (<CL>) and n_vocab + 1 (<CR>)
  at::Tensor positions;  // [B, N] int64 rotary position ids (method.md section 4)
  at::Tensor mask;       // [B, N, N] bool, true = may attend (section 3, or the baseline's rule)
  at::Tensor labels;     // [B, N] int64 next ordinary token, kIgnoreLabel where no loss
  int64_t n_targets = 0; // labels that are not kIgnoreLabel
  // [B, n] int64 the ordinary tokens alone, when every block holds the same number n of them (the
  // stream layout): what the uncompressed teacher reads for distillation (trainer.h). Target row
  // t of the batch (in row-major order) is then ordinary token t % (n - 1) of block t / (n - 1).
  at::Tensor plain;
  int64_t n_elements = 0;  // rows of real blocks (sentinels included, padding not)
};

// [N] int64 labels of one block: at an ordinary row, the next ordinary token of the block.
at::Tensor next_ordinary_labels(const MaskedSequence& block);
// Stacks blocks into a batch. Shorter blocks are padded at the end with rows that see only
// themselves, are seen by no other row and take no loss, so the padding changes nothing.
TrainBatch make_batch(std::span<const MaskedSequence> blocks);

enum class TrainLayout { Blocks, Stream };
TrainLayout parse_train_layout(const std::string& name);  // "blocks" | "stream"; throws naming both

struct TrainDataOptions {
  TrainLayout layout = TrainLayout::Blocks;
  Method method = Method::Sentinel;  // any method with a fixed mask (training: sentinel, local, scattered)
  double ratio = 0.5;                // blocks, local / scattered: fraction removed (the mask's budget)
  int64_t window = 0;                // local: fixed window (0 = the paper's relative window)
  int64_t block = 256;               // blocks: elements per block, sentinels included
  uint64_t seed = 0;                 // scattered: mixed with the block index; stream: the draws below
  int32_t cl_id = -1, cr_id = -1;    // sentinel ids (n_vocab, n_vocab + 1)
  // stream: ordinary tokens per sequence; per sequence, a ratio uniform in [ratio_min, ratio_max]
  // and a span length uniform in [span_min, span_max] (the ratio capped at (L - 1) / L); sinks as
  // at inference (PolicyOptions::sinks).
  int64_t seq_len = 1024;
  double ratio_min = 0.4, ratio_max = 0.8;
  int64_t span_min = 8, span_max = 32;
  int64_t sinks = 4;
  SpanLayout span_layout = SpanLayout::Stream;  // stream, sentinel: the scheduler's layout (stream or heavy)
  double stride_share = 0.0;  // heavy: the older budget's evenly spread share (PolicyOptions::stride_share)
  OlderRank older_rank = OlderRank::Attention;  // heavy: what ranks the rest of it (PolicyOptions::older_rank)
  // stream: the fraction of sequences that end with a recurrence, their last copy_len tokens
  // replaced by a passage from earlier in the sequence (after the sinks, within its first half), so
  // that, long after the passage was compressed, the loss rewards summaries that kept its exact
  // tokens (the recall-beyond-the-window probe, eval recall --task repeat, reads the same shape).
  double copy_rate = 0.0;
  int64_t copy_len = 64;
  void validate() const;
};

// Lays a sequence out by reading it (read_and_replay bound to the model in training).
using SequenceReader = std::function<MaskedSequence(const PolicyOptions&, std::span<const int32_t>)>;

// The policy that lays out stream sequence `index` (its ratio and span drawn from the seed).
PolicyOptions stream_sequence_policy(const TrainDataOptions& options, int64_t index);
// Where stream sequence `index` copies its recurrence from (a token index), or -1 when it ends
// without one (drawn from the seed with probability copy_rate).
int64_t recurrence_source(const TrainDataOptions& options, int64_t index);

class TrainData {
 public:
  // Lays the corpus out and cuts it into blocks (stream: sequences); the incomplete last one is
  // dropped. Throws when not even one fits, naming the sizes.
  TrainData(TrainCorpus corpus, const TrainDataOptions& options);
  int64_t n_blocks() const { return n_blocks_; }
  int64_t n_elements() const { return static_cast<int64_t>(elements_.size()); }
  const TrainCorpus& corpus() const { return corpus_; }
  MaskedSequence block(int64_t index) const;                 // positions, mask and ids of one block
  TrainBatch batch(std::span<const int64_t> indices) const;  // blocks stacked
  // Needed when sequences are laid out by reading them (reads_attention of their policy).
  void set_reader(SequenceReader reader) { reader_ = std::move(reader); }
  bool needs_reader() const;

 private:
  TrainCorpus corpus_;
  TrainDataOptions options_;
  SequenceReader reader_;
  std::vector<Element> elements_;  // blocks: the whole layout, sentinels included
  int64_t n_blocks_ = 0;
};

}  // namespace sentinel
