// Names and sizes of the row types (kernels.h): what a weight or KV row of n values occupies.
#include "sentinel/kernels/blocks.h"
#include "sentinel/kernels/kernels.h"

namespace sentinel::kernels {

std::string row_type_name(RowType type) {
  switch (type) {
    case RowType::F32: return "f32";
    case RowType::F16: return "f16";
    case RowType::BF16: return "bf16";
    case RowType::Q4_0: return "q4_0";
    case RowType::Q4_1: return "q4_1";
    case RowType::Q8_0: return "q8_0";
    case RowType::Q5_0: return "q5_0";
    case RowType::Q5_1: return "q5_1";
    case RowType::Q4_K: return "q4_k";
    case RowType::Q5_K: return "q5_k";
    case RowType::Q6_K: return "q6_k";
  }
  return "?";
}

bool is_block_type(RowType type) { return row_type_block(type) > 1; }

int64_t row_type_block(RowType type) {
  switch (type) {
    case RowType::F32:
    case RowType::F16:
    case RowType::BF16: return 1;
    case RowType::Q4_0:
    case RowType::Q4_1:
    case RowType::Q8_0:
    case RowType::Q5_0:
    case RowType::Q5_1: return kBlock;
    case RowType::Q4_K:
    case RowType::Q5_K:
    case RowType::Q6_K: return kSuperBlock;
  }
  return 1;
}

int64_t row_bytes(RowType type, int64_t n) {
  auto blocks = [n](int64_t block_values, size_t block_bytes) {
    return n / block_values * static_cast<int64_t>(block_bytes);
  };
  switch (type) {
    case RowType::F32: return 4 * n;
    case RowType::F16:
    case RowType::BF16: return 2 * n;
    case RowType::Q4_0: return blocks(kBlock, sizeof(BlockQ4_0));
    case RowType::Q4_1: return blocks(kBlock, sizeof(BlockQ4_1));
    case RowType::Q8_0: return blocks(kBlock, sizeof(BlockQ8_0));
    case RowType::Q5_0: return blocks(kBlock, sizeof(BlockQ5_0));
    case RowType::Q5_1: return blocks(kBlock, sizeof(BlockQ5_1));
    case RowType::Q4_K: return blocks(kSuperBlock, sizeof(BlockQ4_K));
    case RowType::Q5_K: return blocks(kSuperBlock, sizeof(BlockQ5_K));
    case RowType::Q6_K: return blocks(kSuperBlock, sizeof(BlockQ6_K));
  }
  return 0;
}

}  // namespace sentinel::kernels
