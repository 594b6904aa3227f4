// The NCCL backend of Communicator (communicator.h): collectives over CUDA tensors.
//
// Built into hone_dist only when CMake finds NCCL (HONE_HAVE_NCCL; NCCL ships with the
// CUDA toolkit and may be present on a machine without a GPU). Without NCCL these
// functions are not defined: callers guard with the same CMake condition.
//
// Same contract as the MPI backend, with these differences:
// * Tensors must be contiguous CUDA tensors on the communicator's device. Supported dtypes:
//   float32, float64, float16, bfloat16, int32, int64, uint8, int8 for every collective;
//   bool moves in Broadcast/AllGather only. float16/bfloat16 are summed by NCCL in their
//   own dtype (with more than two ranks the partial sums are rounded on the way).
// * Work is ordered after whatever was queued on the legacy default CUDA stream (PyTorch's
//   default stream) before the call; each call returns only when the collective has
//   finished on the device, so its results are visible to any stream afterwards. Work
//   queued on other streams must be synchronised by the caller first.
// * A raw NCCL collective has no timeout (TRL#6796). Here every collective, and the
//   communicator's creation, is enqueued through NCCL's non-blocking API and polled
//   (cudaStreamQuery + ncclCommGetAsyncError) against `timeout_s`; past it the NCCL
//   communicator is aborted (ncclCommAbort, which also stops the stuck kernels) and the
//   call returns DEADLINE_EXCEEDED naming the collective, the group, its world ranks,
//   this rank and the step. Any failure leaves the communicator unusable.
// * Requires NCCL >= 2.14 (non-blocking communicators, ncclCommInitRankConfig).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/dist/communicator.h"

namespace hone::dist {

// True when this process sees at least one CUDA device (cudaGetDeviceCount > 0).
bool CudaDeviceAvailable();

// The CUDA device for a process with this local rank (MpiWorld::local_rank(), the rank
// among the processes on this host): local_rank % device count. FAILED_PRECONDITION
// ("no CUDA device ...") when this process sees none; INVALID_ARGUMENT for a negative
// local rank.
absl::StatusOr<int> PickCudaDevice(int local_rank);

// The NCCL backend over the members of world_ranks (same contract as CreateMpiCommunicator:
// only members call it; MPI must be initialised). The first member creates the
// ncclUniqueId and sends it to the others over MPI (non-blocking, polled against
// timeout_s); NCCL's own initialisation is polled against timeout_s as well. Uses CUDA
// device `device` (pick it with PickCudaDevice) and a CUDA stream of its own.
// FAILED_PRECONDITION naming "no CUDA device" when this process sees none (checked before
// any communication, so a CPU-only machine fails at once); INVALID_ARGUMENT for bad ranks,
// timeout or device index.
//
// Two NCCL ranks of one communicator cannot share a GPU: NCCL refuses that as a
// "duplicate GPU" (each process needs its own device, or, for tests on a one-GPU machine,
// its own NCCL_HOSTID).
absl::StatusOr<std::unique_ptr<Communicator>> CreateNcclCommunicator(const std::vector<int>& world_ranks,
                                                                     const std::string& name, double timeout_s,
                                                                     int device);

}  // namespace hone::dist
