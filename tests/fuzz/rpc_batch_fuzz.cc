// Fuzz target: the gRPC Batch decoder (framework/rpc/rpc.h: BatchFromProto), the trust
// boundary where a message from a buggy or mismatched peer arrives. The input is the
// serialized proto::Batch as it comes off the wire. A batch that decodes must encode
// (BatchToProto) and decode again to the same columns.
#include <cstdint>
#include <cstring>
#include <string>

#include "framework/rpc/rpc.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    torch::set_num_threads(1);  // one input at a time; no thread pool churn
    return true;
  }();
  (void)quiet;
  hone::proto::Batch msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<hone::Batch> batch = hone::rpc::BatchFromProto(msg);
  if (!batch.ok()) {
    HONE_FUZZ_CHECK(batch.status().code() == absl::StatusCode::kInvalidArgument,
                    batch.status().ToString());
    return 0;
  }
  HONE_FUZZ_CHECK(batch->Validate().ok(), batch->Validate().ToString());
  hone::proto::Batch again;
  absl::Status encoded = hone::rpc::BatchToProto(*batch, &again);
  HONE_FUZZ_CHECK(encoded.ok(), encoded.ToString());
  absl::StatusOr<hone::Batch> reread = hone::rpc::BatchFromProto(again);
  HONE_FUZZ_CHECK(reread.ok(), reread.status().ToString());
  HONE_FUZZ_CHECK(reread->size() == batch->size(), "rows");
  HONE_FUZZ_CHECK(reread->TensorNames() == batch->TensorNames(), "tensor names");
  HONE_FUZZ_CHECK(reread->StringNames() == batch->StringNames(), "string names");
  HONE_FUZZ_CHECK(reread->IntNames() == batch->IntNames(), "int names");
  HONE_FUZZ_CHECK(reread->meta == batch->meta, "meta");
  for (const std::string& name : batch->TensorNames()) {
    const torch::Tensor& a = batch->tensor(name);
    const torch::Tensor& b = reread->tensor(name);
    HONE_FUZZ_CHECK(a.dtype() == b.dtype() && a.sizes() == b.sizes(), name);
    // Bitwise comparison: NaN payloads must survive too.
    const size_t nbytes = static_cast<size_t>(a.numel()) * a.element_size();
    HONE_FUZZ_CHECK(nbytes == 0 || std::memcmp(a.data_ptr(), b.data_ptr(), nbytes) == 0, name);
  }
  for (const std::string& name : batch->StringNames()) {
    HONE_FUZZ_CHECK(batch->strings(name) == reread->strings(name), name);
  }
  for (const std::string& name : batch->IntNames()) {
    HONE_FUZZ_CHECK(batch->ints(name) == reread->ints(name), name);
  }
  return 0;
}
