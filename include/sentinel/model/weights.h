// Reads Llama weights from a GGUF file or a Hugging Face safetensors folder into float32
// tensors keyed by Hugging Face parameter names. Knows the GGUF naming and the Q/K row
// permutation that llama.cpp's converter applies; knows nothing about the forward pass.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "sentinel/model/config.h"

namespace sentinel {

class GgufFile;
struct SafetensorsTensor;

using WeightMap = std::map<std::string, at::Tensor>;  // HF name -> float32 tensor in torch layout

// The Hugging Face names of every parameter a model so described has, in a fixed order.
std::vector<std::string> hf_parameter_names(const ModelConfig& config);

// Whether llama.cpp's converter stored a family's Q/K rows interleaved per head (llama) rather
// than in Hugging Face's rotate_half order (qwen2, qwen3).
bool gguf_permutes_rotary_rows(Architecture architecture);

// Dequantizes every tensor of a GGUF of the described model. Q and K projections are un-permuted
// back to the Hugging Face "rotate_half" row order where the converter permuted them. matrices =
// false reads only the norms and biases (the quantized path maps the matrices in place). Throws
// naming any tensor of the file that the model would not read.
WeightMap load_gguf_weights(const GgufFile& gguf, const ModelConfig& config, bool matrices = true);

// A float32 copy (owning its memory) of a floating-point safetensors tensor (F32, F16, BF16, F64);
// throws Error naming the tensor for any other dtype.
at::Tensor tensor_from_safetensors(const SafetensorsTensor& t);

// Reads model.safetensors or the shards listed in model.safetensors.index.json of a folder, with
// norm weights as the engine applies them (1 + w for families that store w).
WeightMap load_safetensors_weights(const std::string& folder, const ModelConfig& config);

// The GGUF tensor name for a Hugging Face parameter name of the described model
// ("model.layers.3.mlp.up_proj.weight" -> "blk.3.ffn_up.weight"); empty if there is none.
std::string gguf_tensor_name(const std::string& hf_name, const ModelConfig& config);

}  // namespace sentinel
