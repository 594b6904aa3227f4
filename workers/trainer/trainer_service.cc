#include "workers/trainer/trainer_service.h"

#include <utility>

#include "framework/core/status.h"
#include "framework/rpc/rpc.h"

namespace hone {
namespace {

// The batch of a request, or INVALID_ARGUMENT; the worker keeps serving either way.
absl::StatusOr<Batch> RequestBatch(const proto::Batch& msg) {
  auto batch = rpc::BatchFromProto(msg);
  if (!batch.ok()) return absl::InvalidArgumentError(batch.status().message());
  return batch;
}

}  // namespace

TrainerServiceImpl::TrainerServiceImpl(WorkerIdentity id, ShardedPolicyTrainer* trainer, MainThreadQueue* queue,
                                       SyncFn sync)
    : id_(std::move(id)), trainer_(trainer), queue_(queue), sync_(std::move(sync)) {}

grpc::Status TrainerServiceImpl::ComputeLogProbs(grpc::ServerContext* context,
                                                 const proto::ComputeLogProbsRequest* request,
                                                 proto::ComputeLogProbsResponse* response) {
  if (grpc::Status auth = rpc::CheckToken(*context, id_.token); !auth.ok()) return auth;
  auto batch = RequestBatch(request->trajectories());
  if (!batch.ok()) return rpc::ToGrpc(batch.status());
  double work = 0;  // the computation only: encoding the answer below counts as gRPC time
  absl::Status status = queue_->RunOnMain("ComputeLogProbs", [&]() -> absl::Status {
    absl::StatusOr<LogProbs> computed;
    {
      ScopedWorkTimer timer(&work);
      computed = trainer_->ComputeLogProbs(*batch);
    }
    HONE_ASSIGN_OR_RETURN(LogProbs lp, std::move(computed));
    HONE_RETURN_IF_ERROR(rpc::TensorToProto("old_logprobs", lp.old_logprobs, response->mutable_old_logprobs()));
    HONE_RETURN_IF_ERROR(rpc::TensorToProto("entropy", lp.entropy, response->mutable_entropy()));
    if (lp.ref_logprobs.defined()) {
      HONE_RETURN_IF_ERROR(rpc::TensorToProto("ref_logprobs", lp.ref_logprobs, response->mutable_ref_logprobs()));
    }
    response->set_policy_seconds(lp.policy_seconds);
    response->set_reference_seconds(lp.reference_seconds);
    return absl::OkStatus();
  });
  AttachWorkSeconds(context, work);
  return rpc::ToGrpc(status);
}

grpc::Status TrainerServiceImpl::Update(grpc::ServerContext* context, const proto::UpdateRequest* request,
                                        proto::UpdateResponse* response) {
  if (grpc::Status auth = rpc::CheckToken(*context, id_.token); !auth.ok()) return auth;
  auto batch = RequestBatch(request->trajectories());
  if (!batch.ok()) return rpc::ToGrpc(batch.status());
  double work = 0;
  absl::Status status = queue_->RunOnMain("Update", [&]() -> absl::Status {
    absl::StatusOr<Metrics> updated;
    {
      ScopedWorkTimer timer(&work);
      updated = trainer_->Update(*batch);
    }
    HONE_ASSIGN_OR_RETURN(Metrics metrics, std::move(updated));
    for (const auto& [name, value] : metrics) (*response->mutable_metrics()->mutable_values())[name] = value;
    return absl::OkStatus();
  });
  AttachWorkSeconds(context, work);
  return rpc::ToGrpc(status);
}

grpc::Status TrainerServiceImpl::SaveCheckpoint(grpc::ServerContext* context, const proto::CheckpointRequest* request,
                                                proto::CheckpointResponse*) {
  if (grpc::Status auth = rpc::CheckToken(*context, id_.token); !auth.ok()) return auth;
  double work = 0;
  absl::Status status = queue_->RunOnMain("SaveCheckpoint", [&] {
    ScopedWorkTimer timer(&work);
    return trainer_->SaveCheckpoint(request->dir());
  });
  AttachWorkSeconds(context, work);
  return rpc::ToGrpc(status);
}

grpc::Status TrainerServiceImpl::LoadCheckpoint(grpc::ServerContext* context, const proto::CheckpointRequest* request,
                                                proto::CheckpointResponse*) {
  if (grpc::Status auth = rpc::CheckToken(*context, id_.token); !auth.ok()) return auth;
  double work = 0;
  absl::Status status = queue_->RunOnMain("LoadCheckpoint", [&] {
    ScopedWorkTimer timer(&work);
    return trainer_->LoadCheckpoint(request->dir());
  });
  AttachWorkSeconds(context, work);
  return rpc::ToGrpc(status);
}

grpc::Status TrainerServiceImpl::SyncWeights(grpc::ServerContext* context, const proto::SyncWeightsRequest* request,
                                             proto::SyncWeightsResponse* response) {
  if (grpc::Status auth = rpc::CheckToken(*context, id_.token); !auth.ok()) return auth;
  double work = 0;
  absl::Status status = queue_->RunOnMain("SyncWeights", [&]() -> absl::Status {
    ScopedWorkTimer timer(&work);
    HONE_ASSIGN_OR_RETURN(*response, sync_(request->version()));
    return absl::OkStatus();
  });
  AttachWorkSeconds(context, work);
  return rpc::ToGrpc(status);
}

grpc::Status TrainerServiceImpl::Health(grpc::ServerContext* context, const proto::HealthRequest*,
                                 proto::HealthResponse* response) {
  return AnswerHealth(*context, id_, *queue_, response);
}

grpc::Status TrainerServiceImpl::Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                                 proto::ShutdownResponse*) {
  return AnswerShutdown(*context, id_, *queue_, *request);
}

}  // namespace hone
