#include "framework/model/safetensors.h"
#include "framework/model/safetensors_internal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "framework/core/json_depth.h"
#include "framework/core/status.h"
#include "nlohmann/json.hpp"

// RawTensor bytes are little-endian and are copied to/from host floats with memcpy.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors IO assumes a little-endian host");

namespace hone {

namespace safetensors_internal {

absl::string_view NameOf(DType dtype) {
  const std::string_view name = DTypeName(dtype);
  return absl::string_view(name.data(), name.size());
}

// Element count times element size, or false on a negative dimension or overflow.
bool CheckedNbytes(const std::vector<int64_t>& shape, DType dtype, uint64_t* nbytes) {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *nbytes = n;
  return true;
}

}  // namespace safetensors_internal

namespace {

using safetensors_internal::CheckedNbytes;
using safetensors_internal::NameOf;

namespace fs = std::filesystem;
using json = nlohmann::json;

// The Rust crate's limit: no real header comes close, and it bounds the allocation a
// corrupt length field can cause before anything else is checked.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr char kMetadataKey[] = "__metadata__";
constexpr char kSingleFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";

// Far deeper than any real safetensors header or index (a few levels).
constexpr int kMaxJsonDepth = 128;

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8}, {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},
    {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},   {DType::kBool, "BOOL", 1},
};

// Owns a file descriptor so every early return closes it.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // Closes now so that the caller sees close()'s error (it can report a failed write).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

absl::Status Errno(int err, const std::string& what) {
  return absl::ErrnoToStatus(err, what);  // appends strerror(err) itself
}

// Debian's absl::string_view is not std::string_view, so StrCat needs this bridge.
std::string TensorContext(const std::string& path, const std::string& name) {
  return absl::StrCat(path, ": tensor '", name, "': ");
}

absl::Status ValidateForWrite(const std::string& path, const std::string& name, const RawTensor& t) {
  if (name == kMetadataKey) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensor name '", kMetadataKey, "' is reserved"));
  }
  uint64_t nbytes = 0;
  if (!CheckedNbytes(t.shape, t.dtype, &nbytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(TensorContext(path, name), "shape has a negative dimension or overflows"));
  }
  if (nbytes != t.data.size()) {
    return absl::InvalidArgumentError(absl::StrCat(TensorContext(path, name), "has ", t.data.size(),
                                                   " data bytes but shape and ", NameOf(t.dtype),
                                                   " need ", nbytes));
  }
  return absl::OkStatus();
}

// pread() until n bytes arrived; a short file is an error (the size was checked, so
// this only fires if the file shrinks while we read it).
absl::Status ReadAt(int fd, uint64_t offset, void* buf, size_t n, const std::string& path) {
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    ssize_t got = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, absl::StrCat(path, ": read failed"));
    }
    if (got == 0) return absl::DataLossError(absl::StrCat(path, ": file ended early (truncated while reading?)"));
    p += got;
    offset += static_cast<uint64_t>(got);
    n -= static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const void* buf, size_t n, const std::string& path) {
  const auto* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t put = ::write(fd, p, n);
    if (put < 0) {
      if (errno == EINTR) continue;
      return Errno(errno, absl::StrCat(path, ": write failed"));
    }
    p += put;
    n -= static_cast<size_t>(put);
  }
  return absl::OkStatus();
}

struct Span {
  const void* data;
  size_t size;
};

// Writes the concatenation of `parts` to path + ".tmp", fsyncs it and renames it over
// `path`: readers see the old file or the whole new one, never a prefix. The parent
// directory is fsync'ed (best effort) so the rename itself survives a power loss.
absl::Status WriteFileAtomically(const std::string& path, const std::vector<Span>& parts) {
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Errno(errno, absl::StrCat("cannot create ", tmp));
  absl::Status status;
  for (const Span& part : parts) {
    status = WriteAll(fd.get(), part.data, part.size, tmp);
    if (!status.ok()) break;
  }
  if (status.ok() && ::fsync(fd.get()) != 0) status = Errno(errno, absl::StrCat(tmp, ": fsync failed"));
  if (fd.Close() != 0 && status.ok()) status = Errno(errno, absl::StrCat(tmp, ": close failed"));
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = Errno(errno, absl::StrCat("cannot rename ", tmp, " to ", path));
  }
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
  return absl::OkStatus();
}

using Entry = std::pair<const std::string*, const RawTensor*>;

// WriteSafetensors over any subset of a TensorMap (shards), without copying tensor data.
absl::Status WriteEntries(const std::string& path, const std::vector<Entry>& entries,
                          const std::map<std::string, std::string>& metadata) {
  for (const auto& [name, tensor] : entries) {
    HONE_RETURN_IF_ERROR(ValidateForWrite(path, *name, *tensor));
  }
  // The header is assembled by hand rather than as one json object: nlohmann's
  // ordered_json looks keys up linearly (quadratic for thousands of tensors) and plain
  // json would sort "__metadata__" among the names. Keys are still escaped by nlohmann.
  std::string header = "{";
  try {
    if (!metadata.empty()) absl::StrAppend(&header, "\"", kMetadataKey, "\":", json(metadata).dump());
    uint64_t offset = 0;
    for (const auto& [name, tensor] : entries) {
      const uint64_t end = offset + tensor->data.size();
      json entry = {{"dtype", std::string(DTypeName(tensor->dtype))},
                    {"shape", tensor->shape},
                    {"data_offsets", {offset, end}}};
      absl::StrAppend(&header, header.size() > 1 ? "," : "", json(*name).dump(), ":", entry.dump());
      offset = end;
    }
  } catch (const json::exception& e) {
    // dump() throws on strings that are not valid UTF-8.
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot encode header: ", e.what()));
  }
  header += "}";
  // Pad to a multiple of 8 so the byte buffer starts 8-aligned, as the Rust crate does.
  header.append((8 - header.size() % 8) % 8, ' ');

  uint8_t len[8];
  uint64_t n = header.size();
  std::memcpy(len, &n, 8);
  std::vector<Span> parts = {{len, 8}, {header.data(), header.size()}};
  for (const auto& [name, tensor] : entries) parts.push_back({tensor->data.data(), tensor->data.size()});
  return WriteFileAtomically(path, parts);
}

// Reads a whole small file (an index), refusing anything over kMaxHeaderBytes.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno(errno, absl::StrCat("cannot open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno(errno, absl::StrCat("cannot stat ", path));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  if (static_cast<uint64_t>(st.st_size) > kMaxHeaderBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.st_size, " bytes is too large for an index"));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  HONE_RETURN_IF_ERROR(ReadAt(fd.get(), 0, text.data(), text.size(), path));
  return text;
}

// "model-00001-of-00003.safetensors" as transformers names shards (5+ digit fields).
bool IsShardFileName(std::string_view name) {
  auto digits = [&name](size_t min) {
    size_t i = 0;
    while (i < name.size() && absl::ascii_isdigit(static_cast<unsigned char>(name[i]))) ++i;
    name.remove_prefix(i);
    return i >= min;
  };
  auto consume = [&name](std::string_view s) {
    if (name.substr(0, s.size()) != s) return false;
    name.remove_prefix(s.size());
    return true;
  };
  return consume("model-") && digits(5) && consume("-of-") && digits(5) && consume(".safetensors") &&
         name.empty();
}

std::string ShardFileName(size_t index, size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", index, count);
  return buf;
}

absl::Status RemoveIfExists(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
  if (ec) return Errno(ec.value(), absl::StrCat("cannot remove stale ", p.string()));
  return absl::OkStatus();
}

}  // namespace

std::string_view DTypeName(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.name;
  }
  return "?";
}

absl::StatusOr<DType> ParseDType(std::string_view name) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported safetensors dtype '", absl::string_view(name.data(), name.size()), "'"));
}

size_t DTypeSize(DType dtype) {
  for (const DTypeInfo& info : kDTypes) {
    if (info.dtype == dtype) return info.size;
  }
  return 0;
}

bool IsFloatingPoint(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF16 || dtype == DType::kBF16 || dtype == DType::kF64;
}

int64_t RawTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<TensorMap> ReadSafetensors(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno(errno, absl::StrCat("cannot open ", path));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno(errno, absl::StrCat("cannot stat ", path));
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    return absl::DataLossError(
        absl::StrCat(path, ": file has ", file_size, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len = 0;
  HONE_RETURN_IF_ERROR(ReadAt(fd.get(), 0, &header_len, 8, path));
  if (header_len > kMaxHeaderBytes) {
    return absl::DataLossError(
        absl::StrCat(path, ": header length ", header_len, " exceeds the ", kMaxHeaderBytes, "-byte limit"));
  }
  if (header_len > file_size - 8) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_len, " exceeds the file size ",
                                            file_size, " (truncated or not a safetensors file)"));
  }
  std::string header_text(header_len, '\0');
  HONE_RETURN_IF_ERROR(ReadAt(fd.get(), 8, header_text.data(), header_len, path));

  if (JsonDeeperThan(header_text, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": header is nested deeper than ", kMaxJsonDepth, " levels"));
  }
  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": header is not valid JSON: ", e.what()));
  }
  if (!header.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, ": header is not a JSON object"));

  struct Slot {
    const std::string* name;
    uint64_t begin, end;
  };
  const uint64_t data_start = 8 + header_len;
  const uint64_t buffer_size = file_size - data_start;
  TensorMap tensors;
  std::vector<Slot> slots;
  // parse() validated UTF-8 and only type-checked accessors follow, so nothing below throws.
  for (const auto& [name, info] : header.items()) {
    if (name == kMetadataKey) {
      if (!info.is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": ", kMetadataKey, " is not a JSON object"));
      }
      continue;
    }
    const std::string where = TensorContext(path, name);
    if (!info.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, "entry is not a JSON object"));
    auto dtype_it = info.find("dtype");
    auto shape_it = info.find("shape");
    auto offsets_it = info.find("data_offsets");
    if (dtype_it == info.end() || !dtype_it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "missing string \"dtype\""));
    }
    absl::StatusOr<DType> dtype = ParseDType(dtype_it->get_ref<const std::string&>());
    if (!dtype.ok()) return absl::InvalidArgumentError(absl::StrCat(where, dtype.status().message()));
    if (shape_it == info.end() || !shape_it->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "missing array \"shape\""));
    }
    RawTensor tensor;
    tensor.dtype = *dtype;
    for (const json& dim : *shape_it) {
      // Negative numbers and floats are not number_unsigned, so this rejects them too.
      if (!dim.is_number_unsigned() ||
          dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(absl::StrCat(where, "shape ", shape_it->dump(),
                                                       " must hold non-negative integers"));
      }
      tensor.shape.push_back(static_cast<int64_t>(dim.get<uint64_t>()));
    }
    uint64_t nbytes = 0;
    if (!CheckedNbytes(tensor.shape, tensor.dtype, &nbytes)) {
      return absl::InvalidArgumentError(absl::StrCat(where, "shape ", shape_it->dump(), " overflows"));
    }
    if (offsets_it == info.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "\"data_offsets\" must be [begin, end] with non-negative integers"));
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
    const uint64_t end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end) {
      return absl::InvalidArgumentError(absl::StrCat(where, "data_offsets [", begin, ", ", end, "] are reversed"));
    }
    if (end > buffer_size) {
      return absl::DataLossError(absl::StrCat(where, "data_offsets [", begin, ", ", end, "] exceed the ",
                                              buffer_size, "-byte data buffer (file truncated?)"));
    }
    if (end - begin != nbytes) {
      return absl::InvalidArgumentError(absl::StrCat(where, "data_offsets [", begin, ", ", end, "] span ",
                                                     end - begin, " bytes but shape ", shape_it->dump(), " of ",
                                                     NameOf(tensor.dtype), " needs ", nbytes));
    }
    auto inserted = tensors.emplace(name, std::move(tensor));
    slots.push_back({&inserted.first->first, begin, end});
  }

  // Tensors must tile the buffer exactly, as the Rust crate requires: overlap would let
  // two tensors alias, and gaps or trailing bytes mean the file is not what its header says.
  std::sort(slots.begin(), slots.end(),
            [](const Slot& a, const Slot& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  uint64_t cursor = 0;
  const std::string* previous = nullptr;
  for (const Slot& s : slots) {
    if (s.begin < cursor) {
      return absl::InvalidArgumentError(absl::StrCat(TensorContext(path, *s.name), "data_offsets [", s.begin,
                                                     ", ", s.end, "] overlap tensor '", *previous, "'"));
    }
    if (s.begin > cursor) {
      return absl::InvalidArgumentError(absl::StrCat(TensorContext(path, *s.name), "data_offsets [", s.begin,
                                                     ", ", s.end, "] leave a gap after byte ", cursor));
    }
    cursor = s.end;
    previous = s.name;
  }
  if (cursor != buffer_size) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": tensors cover ", cursor, " bytes but the data buffer has ",
                                                   buffer_size, " (trailing bytes)"));
  }

  // Every size is now bounded by the file size, so these allocations are safe.
  for (const Slot& s : slots) {
    RawTensor& t = tensors[*s.name];
    t.data.resize(s.end - s.begin);
    HONE_RETURN_IF_ERROR(ReadAt(fd.get(), data_start + s.begin, t.data.data(), t.data.size(), path));
  }
  return tensors;
}

absl::Status WriteSafetensors(const std::string& path, const TensorMap& tensors,
                              const std::map<std::string, std::string>& metadata) {
  std::vector<Entry> entries;
  entries.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) entries.emplace_back(&name, &tensor);
  return WriteEntries(path, entries, metadata);
}

absl::StatusOr<TensorMap> ReadSafetensorsDir(const std::string& dir) {
  const fs::path single = fs::path(dir) / kSingleFile;
  const fs::path index = fs::path(dir) / kIndexFile;
  std::error_code ec;
  // transformers prefers the single file when both exist; so do we.
  if (fs::exists(single, ec)) return ReadSafetensors(single.string());
  if (!fs::exists(index, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": has neither ", kSingleFile, " nor ", kIndexFile));
  }
  const std::string index_path = index.string();
  HONE_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index_path));
  if (JsonDeeperThan(text, kMaxJsonDepth)) {
    return absl::InvalidArgumentError(
        absl::StrCat(index_path, ": nested deeper than ", kMaxJsonDepth, " levels"));
  }
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": not valid JSON: ", e.what()));
  }
  auto map_it = doc.is_object() ? doc.find("weight_map") : doc.end();
  if (map_it == doc.end() || !map_it->is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(index_path, ": missing \"weight_map\" object"));
  }
  // Group names by shard so that each shard file is read once.
  std::map<std::string, std::vector<std::string>> by_shard;
  for (const auto& [name, shard] : map_it->items()) {
    if (!shard.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, ": tensor '", name, "': shard is not a string"));
    }
    const std::string& file = shard.get_ref<const std::string&>();
    // A plain name keeps a crafted index from reading files outside the model directory.
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path, ": tensor '", name, "': shard '", file, "' is not a plain file name"));
    }
    by_shard[file].push_back(name);
  }
  TensorMap result;
  for (auto& [file, names] : by_shard) {
    const std::string shard_path = (fs::path(dir) / file).string();
    absl::StatusOr<TensorMap> shard = ReadSafetensors(shard_path);
    if (!shard.ok()) {
      return absl::Status(shard.status().code(),
                          absl::StrCat(shard.status().message(), " (shard listed in ", index_path, ")"));
    }
    for (const std::string& name : names) {
      auto it = shard->find(name);
      if (it == shard->end()) {
        return absl::NotFoundError(absl::StrCat(index_path, ": tensor '", name, "' is mapped to ", shard_path,
                                                " but that shard does not contain it"));
      }
      result.emplace(name, std::move(it->second));
    }
  }
  return result;
}

absl::Status WriteSafetensorsDir(const std::string& dir, const TensorMap& tensors, int64_t max_shard_bytes) {
  if (max_shard_bytes <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(dir, ": max_shard_bytes must be positive, got ", max_shard_bytes));
  }
  // Validate everything first so bad input never leaves a partly written directory.
  for (const auto& [name, tensor] : tensors) HONE_RETURN_IF_ERROR(ValidateForWrite(dir, name, tensor));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Errno(ec.value(), absl::StrCat("cannot create directory ", dir));

  // Greedy packing as huggingface_hub's split_torch_state_dict_into_shards: a tensor
  // larger than the limit is emitted alone at once, others fill the current shard.
  const uint64_t limit = static_cast<uint64_t>(max_shard_bytes);
  std::vector<std::vector<Entry>> shards;
  std::vector<Entry> current;
  uint64_t current_bytes = 0, total_bytes = 0;
  for (const auto& [name, tensor] : tensors) {
    const uint64_t size = tensor.data.size();
    total_bytes += size;
    if (size > limit) {
      shards.push_back({{&name, &tensor}});
      continue;
    }
    if (!current.empty() && current_bytes + size > limit) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.emplace_back(&name, &tensor);
    current_bytes += size;
  }
  if (!current.empty() || shards.empty()) shards.push_back(std::move(current));

  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  const fs::path root(dir);
  std::set<std::string> keep;
  if (shards.size() == 1) {
    HONE_RETURN_IF_ERROR(WriteEntries((root / kSingleFile).string(), shards[0], metadata));
    keep.insert(kSingleFile);
  } else {
    json weight_map = json::object();
    for (size_t i = 0; i < shards.size(); ++i) {
      const std::string file = ShardFileName(i + 1, shards.size());
      HONE_RETURN_IF_ERROR(WriteEntries((root / file).string(), shards[i], metadata));
      for (const auto& [name, tensor] : shards[i]) weight_map[*name] = file;
      keep.insert(file);
    }
    json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", std::move(weight_map)}};
    std::string text;
    try {
      text = index.dump(2) + "\n";
    } catch (const json::exception& e) {
      return absl::InvalidArgumentError(absl::StrCat(dir, ": cannot encode index: ", e.what()));
    }
    HONE_RETURN_IF_ERROR(WriteFileAtomically((root / kIndexFile).string(), {{text.data(), text.size()}}));
    keep.insert(kIndexFile);
  }

  // Delete the other layout's files only now that the new one is complete: a stale
  // model.safetensors would shadow a new index, and stale shards would confuse tools.
  std::vector<fs::path> stale;
  // Explicit increment(ec): range-for would throw filesystem_error on a listing error.
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (keep.count(name)) continue;
    if (name == kSingleFile || name == kIndexFile || IsShardFileName(name)) stale.push_back(it->path());
  }
  if (ec) return Errno(ec.value(), absl::StrCat("cannot list ", dir));
  for (const fs::path& p : stale) HONE_RETURN_IF_ERROR(RemoveIfExists(p));
  return absl::OkStatus();
}

}  // namespace hone
