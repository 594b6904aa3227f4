#include "framework/dist/build_info.h"

#include <torch/torch.h>

#include <sstream>

#ifdef HONE_HAVE_NCCL
#include <nccl.h>
#endif

namespace hone {

std::optional<std::string> NcclVersion() {
#ifdef HONE_HAVE_NCCL
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess) return std::nullopt;
  // NCCL encodes 2.x.y as 20000 + 100 * x + y since 2.9 (major*10000 + minor*100 + patch).
  std::ostringstream out;
  out << version / 10000 << "." << (version % 10000) / 100 << "." << version % 100;
  return out.str();
#else
  return std::nullopt;
#endif
}

std::string BuildInfo() {
  std::ostringstream out;
  out << "libtorch " << TORCH_VERSION << " (CUDA " << (torch::cuda::is_available() ? "available" : "not available")
      << ")\n";
  auto nccl = NcclVersion();
  out << "NCCL " << (nccl ? *nccl : std::string("not built in (not found at configure time)")) << "\n";
  return out.str();
}

std::string VersionText() { return std::string("hone ") + kHoneVersion + "\n" + BuildInfo(); }

}  // namespace hone
