// Batch: the container every role speaks (verl's DataProto). Named tensors that share
// their first dimension, plus per-row strings and integers (prompt text, ground truth,
// group id, ...), plus free-form meta information. Dispatch to a worker group is "split
// it, call, concat". Tensors are kept on the CPU, contiguous, so a batch serialises as
// raw bytes + dtype + shape (the gRPC layer relies on this).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace hone {

class Batch {
 public:
  Batch() = default;

  // Rows in the batch: the common first dimension (0 for an empty batch).
  int64_t size() const { return size_; }

  // Adders check that the new column has size() rows (the first column sets size()).
  // Adding an existing name replaces it. Tensors must have at least one dimension.
  absl::Status SetTensor(const std::string& name, torch::Tensor tensor);
  absl::Status SetStrings(const std::string& name, std::vector<std::string> values);
  absl::Status SetInts(const std::string& name, std::vector<int64_t> values);

  bool HasTensor(const std::string& name) const { return tensors_.count(name) > 0; }
  bool HasStrings(const std::string& name) const { return strings_.count(name) > 0; }
  bool HasInts(const std::string& name) const { return ints_.count(name) > 0; }

  // REQUIRES: the column exists (aborts with the column name otherwise — a programming
  // error in the pipeline, not a user error). Use Require() to check at a boundary.
  const torch::Tensor& tensor(const std::string& name) const;
  const std::vector<std::string>& strings(const std::string& name) const;
  const std::vector<int64_t>& ints(const std::string& name) const;

  // NotFound naming the first missing column among `tensors` / `strings` / `ints`.
  absl::Status Require(const std::vector<std::string>& tensors,
                       const std::vector<std::string>& strings = {},
                       const std::vector<std::string>& ints = {}) const;

  // Every column has size() rows.
  absl::Status Validate() const;

  // Rows `rows` (in that order) of every column. Error on an out-of-range row.
  absl::StatusOr<Batch> Select(const std::vector<int64_t>& rows) const;
  // `chunks` contiguous pieces of sizes differing by at most one (the first ones larger).
  // REQUIRES 1 <= chunks; chunks > size() gives some empty pieces.
  std::vector<Batch> Split(int64_t chunks) const;
  // Rows of all batches in order. All must have the same columns, with tensors agreeing
  // beyond the first dimension (ragged widths are an error: pad first).
  static absl::StatusOr<Batch> Concat(const std::vector<Batch>& batches);

  std::vector<std::string> TensorNames() const;
  std::vector<std::string> StringNames() const;
  std::vector<std::string> IntNames() const;

  std::map<std::string, std::string> meta;  // not split: every piece keeps a copy

 private:
  absl::Status CheckRows(const std::string& name, int64_t rows);

  int64_t size_ = 0;
  bool has_columns_ = false;
  std::map<std::string, torch::Tensor> tensors_;
  std::map<std::string, std::vector<std::string>> strings_;
  std::map<std::string, std::vector<int64_t>> ints_;
};

}  // namespace hone
