#include "framework/data/batch.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone {
namespace {

[[noreturn]] void MissingColumn(const std::string& kind, const std::string& name) {
  std::fprintf(stderr, "hone: Batch has no %s column '%s'\n", kind.c_str(), name.c_str());
  std::abort();
}

template <typename Map>
std::vector<std::string> Keys(const Map& map) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : map) keys.push_back(key);
  return keys;
}

template <typename T>
std::vector<T> Pick(const std::vector<T>& values, const std::vector<int64_t>& rows) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (int64_t r : rows) out.push_back(values[r]);
  return out;
}

}  // namespace

absl::Status Batch::CheckRows(const std::string& name, int64_t rows) {
  if (!has_columns_) {
    size_ = rows;
    has_columns_ = true;
    return absl::OkStatus();
  }
  if (rows != size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch column '", name, "' has ", rows, " rows, the batch has ", size_));
  }
  return absl::OkStatus();
}

absl::Status Batch::SetTensor(const std::string& name, torch::Tensor tensor) {
  if (!tensor.defined() || tensor.dim() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("batch tensor '", name, "' needs a first dimension"));
  }
  HONE_RETURN_IF_ERROR(CheckRows(name, tensor.size(0)));
  tensors_[name] = tensor.to(torch::kCPU).contiguous();
  return absl::OkStatus();
}

absl::Status Batch::SetStrings(const std::string& name, std::vector<std::string> values) {
  HONE_RETURN_IF_ERROR(CheckRows(name, static_cast<int64_t>(values.size())));
  strings_[name] = std::move(values);
  return absl::OkStatus();
}

absl::Status Batch::SetInts(const std::string& name, std::vector<int64_t> values) {
  HONE_RETURN_IF_ERROR(CheckRows(name, static_cast<int64_t>(values.size())));
  ints_[name] = std::move(values);
  return absl::OkStatus();
}

const torch::Tensor& Batch::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) MissingColumn("tensor", name);
  return it->second;
}

const std::vector<std::string>& Batch::strings(const std::string& name) const {
  auto it = strings_.find(name);
  if (it == strings_.end()) MissingColumn("string", name);
  return it->second;
}

const std::vector<int64_t>& Batch::ints(const std::string& name) const {
  auto it = ints_.find(name);
  if (it == ints_.end()) MissingColumn("int", name);
  return it->second;
}

absl::Status Batch::Require(const std::vector<std::string>& tensors,
                            const std::vector<std::string>& strings,
                            const std::vector<std::string>& ints) const {
  for (const auto& n : tensors) {
    if (!HasTensor(n)) return absl::NotFoundError(absl::StrCat("batch lacks tensor '", n, "'"));
  }
  for (const auto& n : strings) {
    if (!HasStrings(n)) return absl::NotFoundError(absl::StrCat("batch lacks strings '", n, "'"));
  }
  for (const auto& n : ints) {
    if (!HasInts(n)) return absl::NotFoundError(absl::StrCat("batch lacks ints '", n, "'"));
  }
  return absl::OkStatus();
}

absl::Status Batch::Validate() const {
  auto bad = [&](const std::string& name, int64_t rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch column '", name, "' has ", rows, " rows, the batch has ", size_));
  };
  for (const auto& [n, t] : tensors_) if (t.size(0) != size_) return bad(n, t.size(0));
  for (const auto& [n, v] : strings_) if (static_cast<int64_t>(v.size()) != size_) return bad(n, v.size());
  for (const auto& [n, v] : ints_) if (static_cast<int64_t>(v.size()) != size_) return bad(n, v.size());
  return absl::OkStatus();
}

absl::StatusOr<Batch> Batch::Select(const std::vector<int64_t>& rows) const {
  for (int64_t r : rows) {
    if (r < 0 || r >= size_) {
      return absl::OutOfRangeError(absl::StrCat("row ", r, " outside a batch of ", size_));
    }
  }
  Batch out;
  out.meta = meta;
  out.size_ = static_cast<int64_t>(rows.size());
  out.has_columns_ = has_columns_;
  auto index = torch::tensor(rows, torch::kInt64);
  for (const auto& [n, t] : tensors_) out.tensors_[n] = t.index_select(0, index);
  for (const auto& [n, v] : strings_) out.strings_[n] = Pick(v, rows);
  for (const auto& [n, v] : ints_) out.ints_[n] = Pick(v, rows);
  return out;
}

std::vector<Batch> Batch::Split(int64_t chunks) const {
  std::vector<Batch> pieces;
  int64_t start = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t rows = size_ / chunks + (c < size_ % chunks ? 1 : 0);
    std::vector<int64_t> indices(rows);
    for (int64_t i = 0; i < rows; ++i) indices[i] = start + i;
    pieces.push_back(*Select(indices));
    start += rows;
  }
  return pieces;
}

absl::StatusOr<Batch> Batch::Concat(const std::vector<Batch>& batches) {
  if (batches.empty()) return Batch();
  const Batch& first = batches.front();
  for (const Batch& b : batches) {
    if (b.TensorNames() != first.TensorNames() || b.StringNames() != first.StringNames() ||
        b.IntNames() != first.IntNames()) {
      return absl::InvalidArgumentError("batches to concatenate have different columns");
    }
  }
  Batch out;
  out.meta = first.meta;
  out.has_columns_ = first.has_columns_;
  for (const Batch& b : batches) out.size_ += b.size_;
  for (const auto& name : first.TensorNames()) {
    std::vector<torch::Tensor> parts;
    for (const Batch& b : batches) parts.push_back(b.tensors_.at(name));
    HONE_RETURN_IF_ERROR(CatchTorch(absl::StrCat("concatenating batch tensor '", name, "'"),
                                    [&] { out.tensors_[name] = torch::cat(parts, 0); }));
  }
  for (const auto& name : first.StringNames()) {
    auto& v = out.strings_[name];
    for (const Batch& b : batches) v.insert(v.end(), b.strings_.at(name).begin(), b.strings_.at(name).end());
  }
  for (const auto& name : first.IntNames()) {
    auto& v = out.ints_[name];
    for (const Batch& b : batches) v.insert(v.end(), b.ints_.at(name).begin(), b.ints_.at(name).end());
  }
  return out;
}

std::vector<std::string> Batch::TensorNames() const { return Keys(tensors_); }
std::vector<std::string> Batch::StringNames() const { return Keys(strings_); }
std::vector<std::string> Batch::IntNames() const { return Keys(ints_); }

}  // namespace hone
