// Dequantization of ggml blocks to f32, one tight loop per block type, following
// ggml-quants.c (dequantize_row_*) operation for operation so that results are bit-identical
// to ggml and gguf-py. Not SIMD: a 135M-parameter model dequantizes in well under a second.
//
// Every product below is written as ggml writes it, e.g. (d * sc) * q rather than d * (sc * q):
// float multiplication is not associative. This relies on the compiler not fusing a*b+c into an
// FMA, which holds for the default x86-64 target (no -mfma); with -march=native the Q4_1/Q5_1
// and K-quant results may differ from ggml in the last bit.
#include <array>
#include <cstring>

#include "sentinel/core/error.h"
#include "sentinel/io/dequant.h"

namespace sentinel {
namespace {

constexpr int64_t QK_K = 256;

uint32_t f16_bits_to_f32_bits(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) return sign | 0x7f800000u | (mantissa << 13);  // inf, NaN (payload kept)
  if (exponent != 0) return sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  if (mantissa == 0) return sign;  // +-0
  // Subnormal half (mantissa * 2^-24): shift the leading 1 up to the implicit bit.
  exponent = 127 - 15 + 1;
  while ((mantissa & 0x400) == 0) {
    mantissa <<= 1;
    --exponent;
  }
  return sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
}

// All 65536 halves as floats (256 KiB), built on first use: one load per converted element.
const std::array<float, 65536>& f16_table() {
  static const auto table = [] {
    std::array<float, 65536> t{};
    for (uint32_t h = 0; h < 65536; ++h) {
      const uint32_t bits = f16_bits_to_f32_bits(static_cast<uint16_t>(h));
      std::memcpy(&t[h], &bits, sizeof(float));
    }
    return t;
  }();
  return table;
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline float load_f16(const float* table, const uint8_t* p) { return table[load_u16(p)]; }

// ---- plain float types ----

void dequant_f32(const uint8_t* src, float* dst, int64_t n) { std::memcpy(dst, src, static_cast<size_t>(n) * 4); }

void dequant_f64(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    double v;
    std::memcpy(&v, src + 8 * i, 8);
    dst[i] = static_cast<float>(v);
  }
}

void dequant_f16(const uint8_t* src, float* dst, int64_t n) {
  const float* table = f16_table().data();
  for (int64_t i = 0; i < n; ++i) dst[i] = load_f16(table, src + 2 * i);
}

void dequant_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(load_u16(src + 2 * i));
}

// ---- 32-element blocks ----

// block_q4_0 {f16 d; u8 qs[16]}: low nibbles are elements 0..15, high nibbles 16..31; x = (q - 8) * d.
void dequant_q4_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 18, dst += 32) {
    const float d = load_f16(table, src);
    const uint8_t* qs = src + 2;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>((qs[j] & 0x0f) - 8) * d;
      dst[j + 16] = static_cast<float>((qs[j] >> 4) - 8) * d;
    }
  }
}

// block_q4_1 {f16 d; f16 m; u8 qs[16]}: x = q * d + m.
void dequant_q4_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 20, dst += 32) {
    const float d = load_f16(table, src);
    const float m = load_f16(table, src + 2);
    const uint8_t* qs = src + 4;
    for (int j = 0; j < 16; ++j) {
      dst[j] = static_cast<float>(qs[j] & 0x0f) * d + m;
      dst[j + 16] = static_cast<float>(qs[j] >> 4) * d + m;
    }
  }
}

// block_q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: bit j of the little-endian u32 qh is bit 4 of element j.
void dequant_q5_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 22, dst += 32) {
    const float d = load_f16(table, src);
    uint32_t qh;
    std::memcpy(&qh, src + 2, 4);
    const uint8_t* qs = src + 6;
    for (int j = 0; j < 16; ++j) {
      const int high0 = static_cast<int>((qh >> j) << 4) & 0x10;
      const int high1 = static_cast<int>(qh >> (j + 12)) & 0x10;
      dst[j] = static_cast<float>(((qs[j] & 0x0f) | high0) - 16) * d;
      dst[j + 16] = static_cast<float>(((qs[j] >> 4) | high1) - 16) * d;
    }
  }
}

// block_q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: x = q * d + m.
void dequant_q5_1(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 24, dst += 32) {
    const float d = load_f16(table, src);
    const float m = load_f16(table, src + 2);
    uint32_t qh;
    std::memcpy(&qh, src + 4, 4);
    const uint8_t* qs = src + 8;
    for (int j = 0; j < 16; ++j) {
      const int high0 = static_cast<int>((qh >> j) << 4) & 0x10;
      const int high1 = static_cast<int>(qh >> (j + 12)) & 0x10;
      dst[j] = static_cast<float>((qs[j] & 0x0f) | high0) * d + m;
      dst[j + 16] = static_cast<float>((qs[j] >> 4) | high1) * d + m;
    }
  }
}

// block_q8_0 {f16 d; i8 qs[32]}: x = q * d.
void dequant_q8_0(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 34, dst += 32) {
    const float d = load_f16(table, src);
    const auto* qs = reinterpret_cast<const int8_t*>(src + 2);
    for (int j = 0; j < 32; ++j) dst[j] = static_cast<float>(qs[j]) * d;
  }
}

// ---- 256-element K-quant super-blocks ----

// The 12 packed bytes of Q4_K/Q5_K hold eight 6-bit scales and eight 6-bit mins
// (get_scale_min_k4 in ggml-quants.c).
inline void scale_min_k4(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// block_q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}: 2-bit q, 4-bit scale and min per 16.
void dequant_q2_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 84) {
    const uint8_t* scales = src;
    const uint8_t* q = src + 16;
    const float d = load_f16(table, src + 80);
    const float dmin = load_f16(table, src + 82);
    int is = 0;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2) {
        for (int half = 0; half < 2; ++half) {
          const uint8_t sc = scales[is++];
          const float dl = d * static_cast<float>(sc & 0x0f);
          const float ml = dmin * static_cast<float>(sc >> 4);
          const uint8_t* qh = q + 16 * half;
          for (int l = 0; l < 16; ++l) *dst++ = dl * static_cast<float>((qh[l] >> shift) & 3) - ml;
        }
      }
    }
  }
}

// block_q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}: 2 low bits in qs, the third in
// hmask (a clear bit subtracts 4), sixteen 6-bit scales offset by 32.
void dequant_q3_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
  for (int64_t b = 0; b < n_blocks; ++b, src += 110) {
    const uint8_t* hmask = src;
    const uint8_t* q = src + 32;
    const float d_all = load_f16(table, src + 108);
    uint32_t aux[4];
    std::memcpy(aux, src + 96, 12);
    const uint32_t tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
    aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
    aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
    aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
    int8_t scales[16];
    std::memcpy(scales, aux, 16);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < QK_K; n += 128, q += 32) {
      for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
        for (int half = 0; half < 2; ++half) {
          const float dl = d_all * static_cast<float>(scales[is++] - 32);
          const uint8_t* ql = q + 16 * half;
          const uint8_t* hm = hmask + 16 * half;
          for (int l = 0; l < 16; ++l)
            *dst++ = dl * static_cast<float>(((ql[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        }
      }
    }
  }
}

// block_q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}: per 64 elements, the low nibbles of
// 32 bytes then their high nibbles, each half with its own 6-bit scale and min.
void dequant_q4_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 144) {
    const float d = load_f16(table, src);
    const float dmin = load_f16(table, src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* q = src + 16;
    for (int is = 0; is < 8; is += 2, q += 32) {
      uint8_t sc, m;
      scale_min_k4(is, scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * static_cast<float>(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

// block_q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}: Q4_K plus a fifth bit per
// element from qh, two bit planes per 64 elements.
void dequant_q5_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 176) {
    const float d = load_f16(table, src);
    const float dmin = load_f16(table, src + 2);
    const uint8_t* scales = src + 4;
    const uint8_t* qh = src + 16;
    const uint8_t* ql = src + 48;
    unsigned u1 = 1, u2 = 2;  // the qh bit planes of this pair of 32-element halves
    for (int is = 0; is < 8; is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
      uint8_t sc, m;
      scale_min_k4(is, scales, sc, m);
      const float d1 = d * sc, m1 = dmin * m;
      scale_min_k4(is + 1, scales, sc, m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *dst++ = d1 * static_cast<float>((ql[l] & 0x0f) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l) *dst++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
  }
}

// block_q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}: 4 low bits in ql, 2 high bits in qh,
// q - 32 times an 8-bit scale per 16 elements.
void dequant_q6_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  const float* table = f16_table().data();
  for (int64_t b = 0; b < n_blocks; ++b, src += 210) {
    const uint8_t* ql = src;
    const uint8_t* qh = src + 128;
    const auto* sc = reinterpret_cast<const int8_t*>(src + 192);
    const float d = load_f16(table, src + 208);
    for (int n = 0; n < QK_K; n += 128, dst += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        dst[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        dst[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        dst[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        dst[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

// block_q8_K {f32 d; i8 qs[256]; i16 bsums[16]}: x = d * q (bsums only serve dot products).
void dequant_q8_k(const uint8_t* src, float* dst, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b, src += 292, dst += QK_K) {
    float d;
    std::memcpy(&d, src, 4);
    const auto* qs = reinterpret_cast<const int8_t*>(src + 4);
    for (int j = 0; j < QK_K; ++j) dst[j] = d * static_cast<float>(qs[j]);
  }
}

using Kernel = void (*)(const uint8_t* src, float* dst, int64_t n_blocks);

struct Dequantizer {
  GgmlType type;
  Kernel kernel;  // takes a block count; for the 1-element-block float types that is n
};

constexpr Dequantizer kDequantizers[] = {
    {GgmlType::F32, dequant_f32},   {GgmlType::F16, dequant_f16},   {GgmlType::BF16, dequant_bf16},
    {GgmlType::F64, dequant_f64},   {GgmlType::Q4_0, dequant_q4_0}, {GgmlType::Q4_1, dequant_q4_1},
    {GgmlType::Q5_0, dequant_q5_0}, {GgmlType::Q5_1, dequant_q5_1}, {GgmlType::Q8_0, dequant_q8_0},
    {GgmlType::Q2_K, dequant_q2_k}, {GgmlType::Q3_K, dequant_q3_k}, {GgmlType::Q4_K, dequant_q4_k},
    {GgmlType::Q5_K, dequant_q5_k}, {GgmlType::Q6_K, dequant_q6_k}, {GgmlType::Q8_K, dequant_q8_k},
};

Kernel find_kernel(GgmlType type) {
  for (const auto& d : kDequantizers)
    if (d.type == type) return d.kernel;
  return nullptr;
}

std::string supported_list() {
  std::string out;
  for (const auto& d : kDequantizers) out += (out.empty() ? "" : ", ") + ggml_type_name(d.type);
  return out;
}

}  // namespace

float f16_to_f32(uint16_t half) { return f16_table()[half]; }

float bf16_to_f32(uint16_t bf16) {
  const uint32_t bits = static_cast<uint32_t>(bf16) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

bool ggml_can_dequantize(GgmlType type) { return find_kernel(type) != nullptr; }

void dequantize(GgmlType type, std::span<const uint8_t> src, std::span<float> dst) {
  const Kernel kernel = find_kernel(type);
  check(kernel != nullptr, "ggml type ", ggml_type_name(type), " cannot be dequantized yet; supported: ",
        supported_list());
  const auto n = static_cast<int64_t>(dst.size());
  const int64_t expected = ggml_row_bytes(type, n);
  check(static_cast<int64_t>(src.size()) == expected, "dequantize: ", n, " elements of ", ggml_type_name(type),
        " take ", expected, " bytes, but the source holds ", src.size());
  if (n == 0) return;
  kernel(src.data(), dst.data(), n / ggml_block_size(type));
}

std::vector<float> dequantize(const GgufTensorInfo& tensor) {
  check(ggml_can_dequantize(tensor.type), "tensor '", tensor.name, "' has type ", ggml_type_name(tensor.type),
        ", which Sentinel cannot dequantize yet; supported: ", supported_list());
  std::vector<float> out(static_cast<size_t>(tensor.n_elements()));
  dequantize(tensor.type, tensor.data, out);
  return out;
}

}  // namespace sentinel
