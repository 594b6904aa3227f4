// Torch-free reading and writing of the safetensors format
// (https://github.com/huggingface/safetensors), single files and HF-style model
// directories (one file, or shards plus model.safetensors.index.json).
//
// File layout: an 8-byte little-endian u64 N, then N bytes of JSON header
//   {"__metadata__": {"format": "pt"},
//    "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// then the byte buffer; data_offsets are relative to the start of that buffer.
//
// Tensors are plain byte buffers here (RawTensor); the model code turns them into torch
// tensors. Keeping this library free of libtorch lets CPU-only roles and tools use it and
// keeps it fast to build.
//
// Thread safety: all functions are reentrant; concurrent writers to the same path race on
// the final rename (the last one wins, but no reader ever sees a half-written file).
#ifndef HONE_FRAMEWORK_MODEL_SAFETENSORS_H_
#define HONE_FRAMEWORK_MODEL_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hone {

// Element types, spelled in files exactly as the safetensors spec does.
enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI8, kU8, kBool };

// "F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL".
std::string_view DTypeName(DType dtype);

// Inverse of DTypeName (case-sensitive, as in the spec). Returns InvalidArgument for any
// other string, including dtypes the spec has but we do not support (e.g. "F8_E4M3").
absl::StatusOr<DType> ParseDType(std::string_view name);

// Bytes per element: 4, 2, 2, 8, 8, 4, 1, 1, 1 (BOOL is one byte, 0 or 1).
size_t DTypeSize(DType dtype);

// True for F32, F16, BF16 and F64: the dtypes ToFloat32/FromFloat32 handle.
bool IsFloatingPoint(DType dtype);

// One tensor as stored in a file: row-major, little-endian element bytes.
// Invariant expected by WriteSafetensors: data.size() == numel() * DTypeSize(dtype).
struct RawTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // empty = 0-d (scalar) tensor with one element
  std::vector<uint8_t> data;

  // Product of shape; 1 for a 0-d tensor, 0 if any dimension is 0.
  int64_t numel() const;
};

// Sorted by name so that writing the same map always produces the same bytes.
using TensorMap = std::map<std::string, RawTensor>;

// Reads every tensor of one .safetensors file.
//
// The whole file is validated before any tensor data is allocated, so a corrupt file
// costs at most its own size in memory. Returns a non-OK status whose message names
// `path` (and the tensor, where one is at fault) when:
//   - the file cannot be opened or read (NotFound if missing);
//   - it is shorter than 8 bytes, or the header length N exceeds the file or 100 MB;
//   - the header is not a JSON object, or an entry lacks dtype/shape/data_offsets;
//   - a dtype is unknown, a dimension negative, or the element count overflows;
//   - data_offsets are reversed, exceed the buffer, disagree with shape * dtype size,
//     overlap another tensor, or leave gaps / trailing bytes (like the Rust crate,
//     tensors must tile the buffer exactly, which also catches any truncation).
// "__metadata__" must be a JSON object if present; its contents are not returned.
absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path);

// Writes `tensors` to `path` in TensorMap (name) order with `metadata` as
// "__metadata__" (omitted when empty). The header is padded with spaces to a multiple
// of 8 bytes, as the Rust safetensors crate does.
//
// Atomic: the bytes go to path + ".tmp", are fsync'ed, and the temp file is renamed
// over `path`, so a crash leaves either the old file or the complete new one. On any
// error the temp file is removed and `path` is untouched.
//
// Returns InvalidArgument (naming the tensor) if a tensor's data size disagrees with
// its shape and dtype, a dimension is negative, a name is "__metadata__", or a name or
// metadata string is not valid UTF-8; an I/O error status naming the path otherwise.
absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors,
                              const std::map<std::string, std::string>& metadata = {
                                  {"format", "pt"}});

// Reads a model directory the way HF transformers does: `dir`/model.safetensors if it
// exists, else `dir`/model.safetensors.index.json and the shards its "weight_map"
// (tensor name -> shard file name) names. Only tensors the index names are returned.
//
// Errors (messages name the file and tensor): neither file exists (NotFound); the index
// is not JSON or lacks a "weight_map" object of strings; a shard name is not a plain file
// name inside `dir`; a shard is missing or unreadable (any ReadSafetensors error); a
// shard lacks a tensor the index assigns to it.
absl::StatusOr<TensorMap> ReadSafetensorsDir(const std::string& dir);

// Writes `tensors` into `dir` (created if needed) as HF transformers' save_pretrained
// does: one model.safetensors when the tensor bytes total at most max_shard_bytes, else
// shards model-00001-of-0000N.safetensors filled greedily in name order (a tensor larger
// than max_shard_bytes gets a shard of its own) plus model.safetensors.index.json
// {"metadata": {"total_size": <sum of tensor bytes>}, "weight_map": {name: shard}}.
//
// Each file is written atomically (see WriteSafetensors), shards before the index.
// Afterwards files of the other layout (a stale model.safetensors, or a stale index and
// model-*-of-*.safetensors shards not in the new set) are deleted so that
// ReadSafetensorsDir sees exactly `tensors`. The directory as a whole is not updated
// atomically: a crash mid-way can leave a mix of old and new shards.
//
// Returns InvalidArgument if max_shard_bytes <= 0 or a tensor is invalid (checked before
// anything is written), an I/O error status naming the file otherwise.
absl::Status WriteSafetensorsDir(const std::string& dir, const TensorMap& tensors,
                                 int64_t max_shard_bytes = 5LL << 30);

// Converts a F16, BF16, F32 or F64 tensor to float32 values (numel() of them).
// F16/BF16 widen exactly (subnormals, infinities and NaN payloads kept); F64 rounds to
// nearest. Returns InvalidArgument for other dtypes or if data.size() disagrees with
// shape and dtype.
absl::StatusOr<std::vector<float>> ToFloat32(const RawTensor& tensor);

// Builds a tensor of dtype `target` from numel(shape) float32 values at `data`.
// F16 and BF16 round to nearest, ties to even, bit-exact with PyTorch's CPU
// conversion (c10::Half / c10::BFloat16): values past the largest finite value become
// infinity. NaN stays NaN: F16 gives sign | 0x7E00 as c10::Half does, BF16 gives 0x7FC0
// as c10::BFloat16's scalar conversion does (PyTorch's vectorized kernels write 0xFFFF
// instead, so NaN bits differ between PyTorch's own paths).
//
// Precondition: IsFloatingPoint(target) and every dimension >= 0; callers taking a dtype
// from configuration must check it first. A violation is a programming error and
// aborts with a message, since there is no sensible tensor to return.
RawTensor FromFloat32(const float* data, std::vector<int64_t> shape, DType target);

// Scalar conversions behind ToFloat32/FromFloat32, exposed for tests and kernels.
float F16BitsToFloat(uint16_t bits);
float BF16BitsToFloat(uint16_t bits);
uint16_t FloatToF16Bits(float value);
uint16_t FloatToBF16Bits(float value);

}  // namespace hone

#endif  // HONE_FRAMEWORK_MODEL_SAFETENSORS_H_
