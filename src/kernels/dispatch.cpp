// Picks the kernel table at run time from cpuid (never from the build machine's flags), and the
// shared helpers of every table: row sizes and exact half-precision conversion.
#include <cstdlib>
#include <cstring>

#include "kernel_tables.h"
#include "sentinel/core/error.h"

namespace sentinel::kernels {
namespace {

Isa initial_isa() {
  // SENTINEL_ISA=scalar forces the portable table (for comparisons and bug reports).
  if (const char* forced = std::getenv("SENTINEL_ISA"); forced != nullptr && *forced != '\0') {
    const Isa isa = parse_isa(forced);
    check(isa_supported(isa), "SENTINEL_ISA=", forced, " but this CPU lacks its instructions; unset it or use scalar");
    return isa;
  }
  return best_isa();
}

}  // namespace

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu, bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf / NaN (payload kept)
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return sign | (abs > 0x7F800000u ? 0x7E00u | ((abs >> 13) & 0x3FFu) : 0x7C00u);
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {                        // result is subnormal or zero
    if (abs < 0x33000000u) return sign;           // below half the smallest subnormal
    const uint32_t mantissa = (abs & 0x7FFFFFu) | 0x800000u;
    const int shift = 126 - static_cast<int>(abs >> 23);  // value in units of 2^-24 = mantissa / 2^shift
    const uint32_t value = mantissa >> shift, rest = mantissa & ((1u << shift) - 1), half = 1u << (shift - 1);
    return sign | static_cast<uint16_t>(value + (rest > half || (rest == half && (value & 1u))));
  }
  const uint32_t rounded = abs + 0xFFFu + ((abs >> 13) & 1u) - 0x38000000u;  // rebias 127 -> 15, round to even
  return sign | static_cast<uint16_t>(rounded >> 13);
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2:
#if defined(__x86_64__) || defined(__i386__)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
      return false;
#endif
    case Isa::Avx512:
#if defined(__x86_64__) || defined(__i386__)
      // libgcc's checks include the OS's: the zmm state must be enabled in XCR0.
      return isa_supported(Isa::Avx2) && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni");
#else
      return false;
#endif
  }
  return false;
}

Isa best_isa() {
  for (Isa isa : {Isa::Avx512, Isa::Avx2})
    if (isa_supported(isa)) return isa;
  return Isa::Scalar;
}

const KernelTable& kernel_table(Isa isa) {
  check(isa_supported(isa), "this CPU cannot run the ", isa_name(isa), " kernels");
#if defined(__x86_64__) || defined(__i386__)
  if (isa == Isa::Avx2) return avx2_table();
  if (isa == Isa::Avx512) return avx512_table();
#endif
  return scalar_table();
}

Isa active_isa() {
  static const Isa isa = initial_isa();  // once per process (thread-safe static initialisation)
  return isa;
}
const KernelTable& kernels() { return kernel_table(active_isa()); }

std::string isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512") return Isa::Avx512;
  fail("unknown instruction set '", name, "'; use scalar, avx2 or avx512");
}

}  // namespace sentinel::kernels
