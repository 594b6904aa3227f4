// Fuzz target: reading safetensors files and model.safetensors.index.json
// (framework/model/safetensors.h: ReadSafetensors, ReadSafetensorsDir).
//
// Input: byte 0 picks the mode; the rest is written to a scratch file.
//   even: the rest is a .safetensors file (8-byte length, JSON header, data), read with
//         ReadSafetensors. A file that reads must write (WriteSafetensors) and read back
//         to the same tensors.
//   odd:  the rest is model.safetensors.index.json in a directory that also holds a valid
//         shard model-00001-of-00001.safetensors (tensors "a" and "b"), read with
//         ReadSafetensorsDir.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>

#include "framework/model/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

const std::string& IndexDir() {
  static const std::string dir = [] {
    std::string d = hone::fuzz::ScratchDir() + "/index_dir";
    std::filesystem::create_directories(d);
    hone::TensorMap shard;
    hone::RawTensor a;
    a.dtype = hone::DType::kF32;
    a.shape = {2};
    a.data.assign(8, 0);
    hone::RawTensor b;
    b.dtype = hone::DType::kI64;
    b.shape = {};
    b.data.assign(8, 1);
    shard["a"] = a;
    shard["b"] = b;
    absl::Status s = hone::WriteSafetensors(d + "/model-00001-of-00001.safetensors", shard);
    HONE_FUZZ_CHECK(s.ok(), s.ToString());
    return d;
  }();
  return dir;
}

bool SameTensors(const hone::TensorMap& x, const hone::TensorMap& y) {
  if (x.size() != y.size()) return false;
  for (auto xi = x.begin(), yi = y.begin(); xi != x.end(); ++xi, ++yi) {
    if (xi->first != yi->first || xi->second.dtype != yi->second.dtype ||
        xi->second.shape != yi->second.shape || xi->second.data != yi->second.data) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest = hone::fuzz::AsView(data + 1, size - 1);
  if (data[0] % 2 == 0) {
    const std::string path = hone::fuzz::ScratchDir() + "/input.safetensors";
    hone::fuzz::WriteFileOrDie(path, rest);
    absl::StatusOr<hone::TensorMap> tensors = hone::ReadSafetensors(path);
    if (!tensors.ok()) {
      HONE_FUZZ_CHECK(tensors.status().message().find(path) != std::string::npos,
                      "the error names the file: " + tensors.status().ToString());
      return 0;
    }
    for (const auto& [name, t] : *tensors) {
      HONE_FUZZ_CHECK(t.data.size() == static_cast<size_t>(t.numel()) * hone::DTypeSize(t.dtype), name);
      if (hone::IsFloatingPoint(t.dtype)) HONE_FUZZ_CHECK(hone::ToFloat32(t).ok(), name);
    }
    const std::string copy = hone::fuzz::ScratchDir() + "/copy.safetensors";
    absl::Status written = hone::WriteSafetensors(copy, *tensors);
    if (!written.ok()) {
      // The writer is stricter than the reader about names (UTF-8 was checked by the JSON
      // parser, so only "__metadata__"-like problems remain); anything else is a bug.
      HONE_FUZZ_CHECK(written.code() == absl::StatusCode::kInvalidArgument, written.ToString());
      return 0;
    }
    absl::StatusOr<hone::TensorMap> reread = hone::ReadSafetensors(copy);
    HONE_FUZZ_CHECK(reread.ok(), reread.status().ToString());
    HONE_FUZZ_CHECK(SameTensors(*tensors, *reread), "write/read round trip");
    return 0;
  }
  const std::string& dir = IndexDir();
  hone::fuzz::WriteFileOrDie(dir + "/model.safetensors.index.json", rest);
  absl::StatusOr<hone::TensorMap> tensors = hone::ReadSafetensorsDir(dir);
  if (tensors.ok()) {
    for (const auto& [name, t] : *tensors) HONE_FUZZ_CHECK(name == "a" || name == "b", name);
  }
  return 0;
}
