// Helpers shared by safetensors.cc (the file format) and safetensors_float.cc (float
// conversions). Not part of the module's interface.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "framework/model/safetensors.h"

namespace hone::safetensors_internal {

absl::string_view NameOf(DType dtype);

// Element count times element size, or false on a negative dimension or overflow.
bool CheckedNbytes(const std::vector<int64_t>& shape, DType dtype, uint64_t* nbytes);

}  // namespace hone::safetensors_internal
