// Tensors and batches <-> proto (rpc.h). Decoding validates every field before touching
// torch, because a message is untrusted input: a bad shape must become INVALID_ARGUMENT,
// never an exception, an abort or a huge allocation.
#include <cstring>
#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "framework/core/status.h"
#include "framework/rpc/rpc.h"

namespace hone::rpc {
namespace {

// The wire format is little-endian and tensors are copied to and from it as raw memory,
// which is only correct on a little-endian host. Every platform Hone targets (x86-64,
// aarch64 Linux) is; a big-endian port would have to byte-swap here.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "framework/rpc copies tensors as raw little-endian bytes; this host is big-endian");

// Tensors with more dims than this are rejected: no Hone tensor has more than a handful,
// and some torch kernels cap the number of dims (a decoded tensor must be usable).
constexpr int kMaxDims = 64;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  int64_t itemsize;
};

// The wire names of hone.proto and their torch types. One table, both directions.
constexpr DtypeInfo kDtypes[] = {
    {"float32", torch::kFloat32, 4}, {"float64", torch::kFloat64, 8},
    {"bfloat16", torch::kBFloat16, 2}, {"float16", torch::kFloat16, 2},
    {"int64", torch::kInt64, 8},     {"int32", torch::kInt32, 4},
    {"uint8", torch::kUInt8, 1},     {"bool", torch::kBool, 1},
};

const DtypeInfo* FindDtype(torch::ScalarType type) {
  for (const DtypeInfo& info : kDtypes) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

const DtypeInfo* FindDtype(const std::string& name) {
  for (const DtypeInfo& info : kDtypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

// A peer-supplied string for an error message: escaped and cut short.
std::string Quoted(const std::string& text) {
  constexpr size_t kMax = 64;
  std::string cut = text.size() > kMax ? text.substr(0, kMax) + "..." : text;
  return absl::StrCat("'", absl::CHexEscape(cut), "'");
}

std::string ShapeString(const google::protobuf::RepeatedField<int64_t>& shape) {
  if (shape.size() > 16) {
    return absl::StrCat("[", absl::StrJoin(shape.begin(), shape.begin() + 16, ", "), ", ... (",
                        shape.size(), " dims)]");
  }
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status Invalid(const std::string& what, const std::string& name, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, " ", Quoted(name), ": ", why));
}

}  // namespace

absl::Status TensorToProto(const std::string& name, const torch::Tensor& tensor, proto::Tensor* out) {
  if (!tensor.defined()) return Invalid("tensor", name, "is undefined");
  if (!tensor.device().is_cpu() || tensor.layout() != torch::kStrided) {
    return Invalid("tensor", name,
                   absl::StrCat("is a ", tensor.toString(), "; only dense CPU tensors go on the wire"));
  }
  const DtypeInfo* info = FindDtype(tensor.scalar_type());
  if (info == nullptr) {
    return Invalid("tensor", name,
                   absl::StrCat("dtype ", c10::toString(tensor.scalar_type()), " has no wire format"));
  }
  try {
    torch::Tensor flat = tensor.contiguous();
    out->Clear();
    out->set_name(name);
    out->set_dtype(info->name);
    for (int64_t d : flat.sizes()) out->add_shape(d);
    out->mutable_data()->assign(static_cast<const char*>(flat.data_ptr()),
                                static_cast<size_t>(flat.numel() * info->itemsize));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("encoding tensor ", Quoted(name), ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> TensorFromProto(const proto::Tensor& msg) {
  const std::string& name = msg.name();
  const DtypeInfo* info = FindDtype(msg.dtype());
  if (info == nullptr) return Invalid("tensor", name, absl::StrCat("unknown dtype ", Quoted(msg.dtype())));
  if (msg.shape_size() > kMaxDims) {
    return Invalid("tensor", name, absl::StrCat("has ", msg.shape_size(), " dims, more than ", kMaxDims));
  }
  // numel, and the product of max(dim, 1): torch computes strides from the latter, so it
  // must fit as well even when a zero dim makes numel 0.
  int64_t numel = 1;
  int64_t stride_product = 1;
  for (int i = 0; i < msg.shape_size(); ++i) {
    int64_t d = msg.shape(i);
    if (d < 0) {
      return Invalid("tensor", name, absl::StrCat("dim ", i, " is negative in shape ", ShapeString(msg.shape())));
    }
    if (__builtin_mul_overflow(stride_product, d == 0 ? 1 : d, &stride_product)) {
      return Invalid("tensor", name, absl::StrCat("shape ", ShapeString(msg.shape()), " overflows the element count"));
    }
    numel *= d;  // cannot overflow: |numel| <= stride_product
  }
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, info->itemsize, &nbytes)) {
    return Invalid("tensor", name, absl::StrCat("shape ", ShapeString(msg.shape()), " overflows the byte count"));
  }
  if (static_cast<uint64_t>(nbytes) != msg.data().size()) {
    return Invalid("tensor", name,
                   absl::StrCat("has ", msg.data().size(), " data bytes; shape ", ShapeString(msg.shape()),
                                " of ", info->name, " needs ", nbytes));
  }
  if (info->type == torch::kBool) {
    // Any other byte is not a valid C++ bool and makes torch's results undefined.
    size_t bad = msg.data().find_first_not_of(std::string("\0\1", 2));
    if (bad != std::string::npos) {
      return Invalid("tensor", name, absl::StrCat("bool element ", bad, " is byte ",
                                                  static_cast<int>(static_cast<uint8_t>(msg.data()[bad])),
                                                  ", not 0 or 1"));
    }
  }
  try {
    std::vector<int64_t> shape(msg.shape().begin(), msg.shape().end());
    torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(info->type));
    if (nbytes > 0) std::memcpy(tensor.data_ptr(), msg.data().data(), static_cast<size_t>(nbytes));
    return tensor;
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("decoding tensor ", Quoted(name), ": ", e.what()));
  }
}

absl::Status BatchToProto(const Batch& batch, proto::Batch* out) {
  out->Clear();
  out->set_rows(batch.size());
  for (const std::string& name : batch.TensorNames()) {
    HONE_RETURN_IF_ERROR(TensorToProto(name, batch.tensor(name), out->add_tensors()));
  }
  for (const std::string& name : batch.StringNames()) {
    proto::StringColumn* column = out->add_strings();
    column->set_name(name);
    const std::vector<std::string>& values = batch.strings(name);
    column->mutable_values()->Reserve(static_cast<int>(values.size()));
    for (const std::string& value : values) column->add_values(value);
  }
  for (const std::string& name : batch.IntNames()) {
    proto::IntColumn* column = out->add_ints();
    column->set_name(name);
    const std::vector<int64_t>& values = batch.ints(name);
    column->mutable_values()->Add(values.begin(), values.end());
  }
  for (const auto& [key, value] : batch.meta) (*out->mutable_meta())[key] = value;
  return absl::OkStatus();
}

absl::StatusOr<Batch> BatchFromProto(const proto::Batch& msg) {
  const int64_t rows = msg.rows();
  if (rows < 0) return absl::InvalidArgumentError(absl::StrCat("batch message has ", rows, " rows"));
  Batch batch;
  std::set<std::string> seen;
  for (const proto::Tensor& t : msg.tensors()) {
    if (!seen.insert(t.name()).second) return Invalid("batch tensor", t.name(), "appears twice");
    HONE_ASSIGN_OR_RETURN(torch::Tensor tensor, TensorFromProto(t));
    if (tensor.dim() == 0) return Invalid("batch tensor", t.name(), "has no dims; a column needs a row dim");
    if (tensor.size(0) != rows) {
      return Invalid("batch tensor", t.name(),
                     absl::StrCat("has ", tensor.size(0), " rows, the batch message says ", rows));
    }
    HONE_RETURN_IF_ERROR(batch.SetTensor(t.name(), std::move(tensor)));
  }
  seen.clear();
  for (const proto::StringColumn& column : msg.strings()) {
    if (!seen.insert(column.name()).second) return Invalid("batch string column", column.name(), "appears twice");
    if (column.values_size() != rows) {
      return Invalid("batch string column", column.name(),
                     absl::StrCat("has ", column.values_size(), " rows, the batch message says ", rows));
    }
    HONE_RETURN_IF_ERROR(batch.SetStrings(
        column.name(), std::vector<std::string>(column.values().begin(), column.values().end())));
  }
  seen.clear();
  for (const proto::IntColumn& column : msg.ints()) {
    if (!seen.insert(column.name()).second) return Invalid("batch int column", column.name(), "appears twice");
    if (column.values_size() != rows) {
      return Invalid("batch int column", column.name(),
                     absl::StrCat("has ", column.values_size(), " rows, the batch message says ", rows));
    }
    HONE_RETURN_IF_ERROR(batch.SetInts(
        column.name(), std::vector<int64_t>(column.values().begin(), column.values().end())));
  }
  if (rows != 0 && msg.tensors_size() + msg.strings_size() + msg.ints_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat("batch message says ", rows, " rows but has no columns"));
  }
  for (const auto& [key, value] : msg.meta()) batch.meta[key] = value;
  return batch;
}

}  // namespace hone::rpc
