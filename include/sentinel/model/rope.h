// Rotary position embeddings' frequencies: the one definition the dense path and the native decode
// step share, with the RoPE scaling of the model's description (ModelConfig::rope_scaling) applied.
#pragma once

#include <ATen/ATen.h>

#include "sentinel/model/config.h"

namespace sentinel {

// [head_dim / 2] float32: inv_freq[i] = 1 / theta^(2i / head_dim), then scaled as transformers'
// _compute_{default,linear,llama3}_parameters compute it (float32 throughout, as the reference) or,
// for llama.cpp's rope_freqs tensor, divided by factors[i] as ggml's rope does.
// sliding: the frequencies of sliding-window layers (rope_theta_sliding, never scaled, as Gemma 3).
at::Tensor rotary_inv_freq(const ModelConfig& config, bool sliding = false);

}  // namespace sentinel
