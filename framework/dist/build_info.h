// What this build of Hone can use for collectives. The communicators themselves (MPI on
// CPU, NCCL on GPU) arrive with the distributed runtime; this is the part of
// framework/dist that exists today: NCCL is detected at configure time (it ships next to
// the CUDA toolkit, also on machines without a GPU) and its code path is compiled in
// whenever it is found.
#pragma once

#include <optional>
#include <string>

namespace hone {

// "2.27.7" when built with NCCL (asks the library itself), else nullopt.
std::optional<std::string> NcclVersion();

// One line per component for `hone --version`: libtorch, NCCL, OpenMP threads.
std::string BuildInfo();

// Hone's own release number.
inline constexpr char kHoneVersion[] = "0.1.0";

// What `hone --version` prints: "hone <kHoneVersion>" and BuildInfo(). Run and checkpoint
// directories keep a copy, so a model says which build made it.
std::string VersionText();

}  // namespace hone
