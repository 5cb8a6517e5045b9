// The full-sequence masked forward (docs/method.md sections 3-4): a whole sequence, sentinels
// included, in one pass with a dense visibility mask. The training and paper-evaluation path,
// and the reference that incremental compression must reproduce (section 6, "Equivalence").
#pragma once

#include <ATen/ATen.h>

#include <span>
#include <vector>

#include "sentinel/engine/session.h"
#include "sentinel/model/decoder.h"
#include "sentinel/policies/policy.h"

namespace sentinel {

struct MaskedSequence {
  std::vector<Element> elements;       // [N] in feeding order, sentinels included
  at::Tensor ids;                      // [1, N] int64
  at::Tensor positions;                // [1, N] int64
  at::Tensor mask;                     // [1, N, N] bool, true = may attend
  std::vector<int64_t> ordinary_rows;  // rows of the ordinary tokens, in order
};

// Expands `tokens` with a fresh policy and builds the mask over the whole sequence. Fails for
// policies whose decisions depend on attention (h2o): they have no fixed mask.
MaskedSequence masked_sequence(CompressionPolicy& fresh_policy, std::span<const int32_t> tokens);

// Elements [begin, end) of a longer layout as a sequence of their own (a training block): ordinary
// positions restart at 0 and sentinels shift with them (an in-stream sentinel takes the id of the
// ordinary token before it, 0 at the block start), so a span cut by the block boundary keeps what
// lies inside the block (method.md sections 3-4). A whole layout as one block is unchanged.
MaskedSequence masked_block(const CompressionPolicy& policy, std::span<const Element> elements);

// The one masked pass that computes what a session computed pass by pass: every element its
// steps fed, each seeing exactly the cells its step's mask showed it among those still cached.
// Exact for any policy, including those whose plan comes from attention (reads_attention).
MaskedSequence replayed_sequence(std::span<const StepRecord> steps);

// Reads `tokens` with a fresh session of `policy` on `model` (no gradients, `chunk` tokens per
// pass) and replays it: the training layout of a policy that decides from attention, on the very
// schedule the model itself produces when it reads the text at inference.
MaskedSequence read_and_replay(DecoderModel& model, const PolicyOptions& policy, std::span<const int32_t> tokens,
                               int64_t chunk);

// Logits of the ordinary tokens: [n_ordinary, n_vocab] float32.
at::Tensor masked_logits(DecoderModel& model, const MaskedSequence& sequence);

}  // namespace sentinel
