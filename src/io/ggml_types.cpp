// The table of ggml tensor types: name, elements per block and bytes per block, as in
// ggml.c's type_traits (and gguf-py's GGML_QUANT_SIZES). Block geometry only; the
// dequantization kernels are in dequant.cpp.
#include <limits>
#include <string>

#include "sentinel/core/error.h"
#include "sentinel/io/dequant.h"
#include "sentinel/io/gguf.h"

namespace sentinel {
namespace {

struct GgmlTypeTraits {
  uint32_t id;
  const char* name;
  int64_t block_size;  // elements per block
  int64_t type_size;   // bytes per block
};

constexpr int64_t QK_K = 256;  // super-block size of the K-quants

// Ids missing here (4, 5: Q4_2/Q4_3; 31-33 and 36-38: repacked variants) were removed from
// ggml and cannot appear in a valid file.
constexpr GgmlTypeTraits kTypes[] = {
    {0, "F32", 1, 4},
    {1, "F16", 1, 2},
    {2, "Q4_0", 32, 2 + 16},
    {3, "Q4_1", 32, 2 + 2 + 16},
    {6, "Q5_0", 32, 2 + 4 + 16},
    {7, "Q5_1", 32, 2 + 2 + 4 + 16},
    {8, "Q8_0", 32, 2 + 32},
    {9, "Q8_1", 32, 4 + 4 + 32},
    {10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4},
    {11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12},
    {12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12},
    {13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12},
    {14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16},
    {15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8},
    {16, "IQ2_XXS", QK_K, 2 + QK_K / 4},
    {17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32},
    {18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8},
    {19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16},
    {20, "IQ4_NL", 32, 2 + 16},
    {21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4},
    {22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16},
    {23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64},
    {24, "I8", 1, 1},
    {25, "I16", 1, 2},
    {26, "I32", 1, 4},
    {27, "I64", 1, 8},
    {28, "F64", 1, 8},
    {29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32},
    {30, "BF16", 1, 2},
    {34, "TQ1_0", QK_K, 2 + 4 * 13},
    {35, "TQ2_0", QK_K, 2 + 64},
    {39, "MXFP4", 32, 1 + 16},
};

const GgmlTypeTraits* find_traits(GgmlType type) {
  for (const auto& traits : kTypes)
    if (traits.id == static_cast<uint32_t>(type)) return &traits;
  return nullptr;
}

const GgmlTypeTraits& traits_or_throw(GgmlType type) {
  const GgmlTypeTraits* traits = find_traits(type);
  check(traits != nullptr, "unknown ggml tensor type ", static_cast<uint32_t>(type),
        "; the file may need a newer Sentinel, or be corrupt");
  return *traits;
}

}  // namespace

std::string ggml_type_name(GgmlType type) {
  const GgmlTypeTraits* traits = find_traits(type);
  return traits != nullptr ? traits->name : "type " + std::to_string(static_cast<uint32_t>(type));
}

bool ggml_type_is_known(GgmlType type) { return find_traits(type) != nullptr; }

int64_t ggml_block_size(GgmlType type) { return traits_or_throw(type).block_size; }

int64_t ggml_type_size(GgmlType type) { return traits_or_throw(type).type_size; }

int64_t ggml_row_bytes(GgmlType type, int64_t n) {
  const GgmlTypeTraits& traits = traits_or_throw(type);
  check(n >= 0, "negative element count ", n, " for ggml type ", traits.name);
  check(n % traits.block_size == 0, "ggml type ", traits.name, " stores blocks of ", traits.block_size,
        " elements, but ", n, " elements is not a whole number of blocks");
  const int64_t n_blocks = n / traits.block_size;
  check(n_blocks <= std::numeric_limits<int64_t>::max() / traits.type_size, n, " elements of ggml type ",
        traits.name, " overflow a 64-bit byte count");
  return n_blocks * traits.type_size;
}

}  // namespace sentinel
