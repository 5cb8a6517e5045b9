// RoPE frequencies with scaling, mirroring transformers' modeling_rope_utils operation by
// operation so float32 results agree with the reference to rounding.
#include "sentinel/model/rope.h"

#include <cmath>

namespace sentinel {

at::Tensor rotary_inv_freq(const ModelConfig& config, bool sliding) {
  const int64_t dim = config.head_dim;
  const at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<double>(dim);
  const double theta = sliding ? config.rope_theta_sliding : config.rope_theta;
  at::Tensor inv_freq = (1.0 / at::pow(theta, exponents)).to(at::kFloat);  // [dim / 2]
  if (sliding) return inv_freq;
  const RopeScaling& s = config.rope_scaling;
  switch (s.type) {
    case RopeScaling::Type::None: return inv_freq;
    case RopeScaling::Type::Linear: return inv_freq / s.factor;
    case RopeScaling::Type::Factors:
      return inv_freq / at::tensor(s.factors, at::kFloat);
    case RopeScaling::Type::Llama3: {
      // Wavelengths longer than the original context / low_freq_factor are divided by factor,
      // shorter than original context / high_freq_factor kept, and those between interpolated.
      const double context = static_cast<double>(s.original_context);
      const double low_freq_wavelen = context / s.low_freq_factor;
      const double high_freq_wavelen = context / s.high_freq_factor;
      const at::Tensor wavelen = 2 * M_PI / inv_freq;
      at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
      const at::Tensor smooth = (context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      const at::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
      const at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
      return at::where(medium, smoothed, scaled);
    }
  }
  return inv_freq;
}

}  // namespace sentinel
