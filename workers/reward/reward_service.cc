#include "workers/reward/reward_service.h"

#include <utility>

#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "framework/rpc/rpc.h"

namespace hone {

RewardServiceImpl::RewardServiceImpl(WorkerIdentity id, RewardScorer* scorer, MainThreadQueue* queue)
    : id_(std::move(id)), scorer_(scorer), queue_(queue) {}

grpc::Status RewardServiceImpl::Score(grpc::ServerContext* context, const proto::ScoreRequest* request,
                                      proto::ScoreResponse* response) {
  grpc::Status auth = rpc::CheckToken(*context, id_.token);
  if (!auth.ok()) return auth;
  absl::StatusOr<Batch> batch = rpc::BatchFromProto(request->trajectories());
  if (!batch.ok()) return rpc::ToGrpc(Annotate(batch.status(), "Score: the trajectories batch"));
  double work = 0;
  absl::Status status = queue_->RunOnMain("Score", [&]() -> absl::Status {
    ScopedWorkTimer timer(&work);
    return CatchTorch("scoring", [&] { return scorer_->Score(*batch); });
  });
  AttachWorkSeconds(context, work);
  if (!status.ok()) return rpc::ToGrpc(status);
  return rpc::ToGrpc(Annotate(rpc::BatchToProto(*batch, response->mutable_scored()), "encoding the scored batch"));
}

grpc::Status RewardServiceImpl::Health(grpc::ServerContext* context, const proto::HealthRequest*,
                                proto::HealthResponse* response) {
  return AnswerHealth(*context, id_, *queue_, response);
}

grpc::Status RewardServiceImpl::Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                                proto::ShutdownResponse*) {
  return AnswerShutdown(*context, id_, *queue_, *request);
}

}  // namespace hone
