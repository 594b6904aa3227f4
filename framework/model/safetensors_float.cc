// Float conversions for safetensors weights (F16 / BF16 / F32 / F64), bit-exact with
// PyTorch's rounding; the file format itself is in safetensors.cc.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "framework/model/safetensors.h"
#include "framework/model/safetensors_internal.h"

namespace hone {

using safetensors_internal::CheckedNbytes;
using safetensors_internal::NameOf;

// --- float conversions ----------------------------------------------------------------
// Integer bit manipulation rather than float arithmetic, so results do not depend on the
// FPU rounding mode or flush-to-zero flags.

float F16BitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13);  // inf, or NaN with its payload
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);  // rebias 15 -> 127
  } else if (mant == 0) {
    bits = sign;  // +-0
  } else {
    // Subnormal m * 2^-24: shift the leading one into the implicit bit position.
    exp = 113;
    while ((mant & 0x400) == 0) {
      mant <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float BF16BitsToFloat(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToF16Bits(float value) {
  uint32_t x;
  std::memcpy(&x, &value, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t ax = x & 0x7FFFFFFF;
  if (ax > 0x7F800000) return sign | 0x7E00;    // NaN -> quiet NaN, as c10::Half
  if (ax >= 0x477FF000) return sign | 0x7C00;   // >= 65520 rounds past 65504: inf
  if (ax >= 0x38800000) {                       // >= 2^-14: normal half
    // Round the 13 dropped mantissa bits to nearest even; a carry bumps the exponent.
    const uint32_t rounded = ax + 0xFFF + ((ax >> 13) & 1);
    return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
  }
  if (ax <= 0x33000000) return sign;  // <= 2^-25: ties to even at zero
  // Subnormal half: value / 2^-24 = significand >> (126 - exp), rounded to nearest even.
  const uint32_t exp = ax >> 23;  // 102..112
  const uint32_t significand = (ax & 0x7FFFFF) | 0x800000;
  const uint32_t shift = 126 - exp;  // 14..24
  uint32_t q = significand >> shift;
  const uint32_t rem = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1))) ++q;  // may carry into the smallest normal
  return sign | static_cast<uint16_t>(q);
}

uint16_t FloatToBF16Bits(float value) {
  if (std::isnan(value)) return 0x7FC0;  // c10::BFloat16's round_to_nearest_even
  uint32_t x;
  std::memcpy(&x, &value, 4);
  // Adding 0x7FFF plus the kept LSB rounds to nearest even; overflow carries into inf.
  return static_cast<uint16_t>((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

absl::StatusOr<std::vector<float>> ToFloat32(const RawTensor& tensor) {
  if (!IsFloatingPoint(tensor.dtype)) {
    return absl::InvalidArgumentError(
        absl::StrCat("ToFloat32: dtype ", NameOf(tensor.dtype), " is not floating point"));
  }
  uint64_t nbytes = 0;
  if (!CheckedNbytes(tensor.shape, tensor.dtype, &nbytes) || nbytes != tensor.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("ToFloat32: ", tensor.data.size(),
                                                   " data bytes do not match the shape and dtype ",
                                                   NameOf(tensor.dtype)));
  }
  const size_t n = nbytes / DTypeSize(tensor.dtype);
  std::vector<float> out(n);
  const uint8_t* p = tensor.data.data();
  switch (tensor.dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), p, n * 4);
      break;
    case DType::kF64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, p + 8 * i, 8);
        out[i] = static_cast<float>(d);
      }
      break;
    case DType::kF16:
    case DType::kBF16: {
      const bool half = tensor.dtype == DType::kF16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t b;
        std::memcpy(&b, p + 2 * i, 2);
        out[i] = half ? F16BitsToFloat(b) : BF16BitsToFloat(b);
      }
      break;
    }
    default:
      break;  // excluded above
  }
  return out;
}

RawTensor FromFloat32(const float* data, std::vector<int64_t> shape, DType target) {
  uint64_t nbytes = 0;
  if (!IsFloatingPoint(target) || !CheckedNbytes(shape, target, &nbytes)) {
    std::fprintf(stderr, "hone::FromFloat32: precondition violated (dtype %s, needs a float dtype and a valid shape)\n",
                 std::string(DTypeName(target)).c_str());
    std::abort();
  }
  RawTensor t;
  t.dtype = target;
  t.shape = std::move(shape);
  t.data.resize(nbytes);
  const size_t n = nbytes / DTypeSize(target);
  uint8_t* p = t.data.data();
  for (size_t i = 0; i < n; ++i) {
    if (target == DType::kF32) {
      std::memcpy(p + 4 * i, &data[i], 4);
    } else if (target == DType::kF64) {
      const double d = data[i];
      std::memcpy(p + 8 * i, &d, 8);
    } else {
      const uint16_t b = target == DType::kF16 ? FloatToF16Bits(data[i]) : FloatToBF16Bits(data[i]);
      std::memcpy(p + 2 * i, &b, 2);
    }
  }
  return t;
}

}  // namespace hone
