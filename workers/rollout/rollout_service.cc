#include "workers/rollout/rollout_service.h"

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"
#include "framework/rpc/rpc.h"

namespace hone {
namespace {

// The prompts contract of roles.h, checked at the trust boundary: LocalRollout reads the
// prompt ids through an unchecked accessor, so a bad shape or length must not reach it.
absl::Status ValidatePrompts(const Batch& prompts) {
  HONE_RETURN_IF_ERROR(prompts.Require({"prompt_ids"}, {"prompt", "ground_truth"}, {"prompt_len", "group_id"}));
  const torch::Tensor& ids = prompts.tensor("prompt_ids");
  if (ids.dim() != 2 || ids.scalar_type() != torch::kInt64) {
    return absl::InvalidArgumentError(absl::StrCat("prompt_ids must be a 2-D int64 tensor, got ", ids.dim(),
                                                   "-D ", c10::toString(ids.scalar_type())));
  }
  if (prompts.size() == 0) return absl::InvalidArgumentError("no prompts to generate from");
  const auto& lengths = prompts.ints("prompt_len");
  for (int64_t g = 0; g < prompts.size(); ++g) {
    if (lengths[g] < 1 || lengths[g] > ids.size(1)) {
      return absl::InvalidArgumentError(absl::StrCat("prompt ", g, " has prompt_len ", lengths[g],
                                                     ", outside [1, ", ids.size(1), "] (the width of prompt_ids)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SamplingParams> SamplingParamsFromProto(const proto::SamplingParams& msg) {
  SamplingParams p;
  p.n = msg.n();
  p.temperature = msg.temperature();
  p.top_k = msg.top_k();
  p.top_p = msg.top_p();
  p.max_new_tokens = msg.max_new_tokens();
  p.stop_token_ids.assign(msg.stop_token_ids().begin(), msg.stop_token_ids().end());
  p.seed = msg.seed();
  auto bad = [](const std::string& what) { return absl::InvalidArgumentError("sampling parameters: " + what); };
  if (p.n < 1) return bad(absl::StrCat("n must be >= 1, got ", p.n));
  if (p.max_new_tokens < 1) return bad(absl::StrCat("max_new_tokens must be >= 1, got ", p.max_new_tokens));
  if (!std::isfinite(p.temperature) || p.temperature < 0) {
    return bad(absl::StrCat("temperature must be finite and >= 0, got ", p.temperature));
  }
  if (p.top_k < 0) return bad(absl::StrCat("top_k must be >= 0, got ", p.top_k));
  if (!(p.top_p > 0 && p.top_p <= 1)) return bad(absl::StrCat("top_p must be in (0, 1], got ", p.top_p));
  return p;
}

void SamplingParamsToProto(const SamplingParams& params, proto::SamplingParams* out) {
  out->set_n(params.n);
  out->set_temperature(params.temperature);
  out->set_top_k(params.top_k);
  out->set_top_p(params.top_p);
  out->set_max_new_tokens(params.max_new_tokens);
  for (int64_t id : params.stop_token_ids) out->add_stop_token_ids(id);
  out->set_seed(params.seed);
}

RolloutServiceImpl::RolloutServiceImpl(WorkerIdentity id, RolloutEngine* engine, MainThreadQueue* queue,
                                       SyncFn sync)
    : id_(std::move(id)), engine_(engine), queue_(queue), sync_(std::move(sync)) {}

grpc::Status RolloutServiceImpl::Generate(grpc::ServerContext* context, const proto::GenerateRequest* request,
                                          proto::GenerateResponse* response) {
  grpc::Status auth = rpc::CheckToken(*context, id_.token);
  if (!auth.ok()) return auth;
  absl::StatusOr<Batch> prompts = rpc::BatchFromProto(request->prompts());
  if (!prompts.ok()) return rpc::ToGrpc(Annotate(prompts.status(), "Generate: the prompts batch"));
  absl::Status valid = ValidatePrompts(*prompts);
  if (!valid.ok()) return rpc::ToGrpc(absl::InvalidArgumentError(absl::StrCat("Generate: ", valid.message())));
  absl::StatusOr<SamplingParams> params = SamplingParamsFromProto(request->sampling());
  if (!params.ok()) return rpc::ToGrpc(Annotate(params.status(), "Generate"));

  Batch trajectories;
  int64_t version = 0;
  double work = 0;
  absl::Status status = queue_->RunOnMain("Generate", [&]() -> absl::Status {
    ScopedWorkTimer timer(&work);
    return CatchTorch("generating", [&]() -> absl::Status {
      HONE_ASSIGN_OR_RETURN(trajectories, engine_->Generate(*prompts, *params));
      version = engine_->policy_version();
      return absl::OkStatus();
    });
  });
  AttachWorkSeconds(context, work);
  if (!status.ok()) return rpc::ToGrpc(status);
  absl::Status encoded = rpc::BatchToProto(trajectories, response->mutable_trajectories());
  if (!encoded.ok()) return rpc::ToGrpc(Annotate(encoded, "encoding the trajectories"));
  response->set_policy_version(version);
  return grpc::Status::OK;
}

grpc::Status RolloutServiceImpl::SyncWeights(grpc::ServerContext* context, const proto::SyncWeightsRequest* request,
                                             proto::SyncWeightsResponse* response) {
  grpc::Status auth = rpc::CheckToken(*context, id_.token);
  if (!auth.ok()) return auth;
  if (!sync_) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this rollout worker was started without a weight-sync path");
  }
  const int64_t version = request->version();
  double work = 0;
  absl::Status status = queue_->RunOnMain("SyncWeights", [&]() -> absl::Status {
    ScopedWorkTimer timer(&work);
    return CatchTorch("syncing weights", [&]() -> absl::Status {
      HONE_ASSIGN_OR_RETURN(*response, sync_(version));
      return absl::OkStatus();
    });
  });
  AttachWorkSeconds(context, work);
  return rpc::ToGrpc(status);
}

grpc::Status RolloutServiceImpl::Health(grpc::ServerContext* context, const proto::HealthRequest*,
                                 proto::HealthResponse* response) {
  return AnswerHealth(*context, id_, *queue_, response);
}

grpc::Status RolloutServiceImpl::Shutdown(grpc::ServerContext* context, const proto::ShutdownRequest* request,
                                 proto::ShutdownResponse*) {
  return AnswerShutdown(*context, id_, *queue_, *request);
}

}  // namespace hone
