#include "workers/controller/distributed.h"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "framework/core/status.h"
#include "framework/dist/weight_sync.h"
#include "framework/rpc/rpc.h"
#include "workers/common/health_monitor.h"
#include "workers/common/remote.h"
#include "workers/common/serving.h"
#include "workers/controller/data_checks.h"
#include "workers/controller/grpo_loop.h"
#include "workers/controller/shutdown.h"
#include "workers/controller/validation.h"
#include "workers/reward/local_reward.h"
#include "workers/reward/remote_reward.h"
#include "workers/reward/reward_service.h"
#include "workers/rollout/local_rollout.h"
#include "workers/rollout/remote_rollout.h"
#include "workers/rollout/rollout_service.h"
#include "workers/trainer/remote_trainer.h"
#include "workers/trainer/sharded_trainer.h"
#include "workers/trainer/trainer_service.h"

namespace hone {
namespace {

using dist::Placement;
using dist::Role;

Placement PlacementFromConfig(const Config& c) {
  return Placement{static_cast<int>(c.Int("placement.rollout")), static_cast<int>(c.Int("placement.reward")),
                   static_cast<int>(c.Int("placement.trainer"))};
}

int MaxMessageBytes(const Config& c) { return static_cast<int>(c.Int("rpc.max_message_mb") * (1 << 20)); }

// The weight-sync group: the trainer group's leader first (the sender), then the rollout ranks.
std::vector<int> WeightSyncRanks(const Placement& p) {
  std::vector<int> ranks = {p.RanksOf(Role::kTrainer).front()};
  for (int r : p.RanksOf(Role::kRollout)) ranks.push_back(r);
  return ranks;
}

// One worker's part of the start-up exchange: "role|index|host|endpoint".
std::string Announce(const WorkerIdentity& id) {
  return absl::StrCat(id.role, "|", id.index, "|", id.host, "|", id.endpoint);
}

absl::StatusOr<WorkerEndpoint> ParseAnnouncement(const std::string& text, int rank) {
  std::vector<std::string> parts = absl::StrSplit(text, '|');
  if (parts.size() != 4) return absl::InternalError(absl::StrCat("rank ", rank, " announced \"", text, "\""));
  WorkerEndpoint w;
  w.role = parts[0];
  w.index = std::stoi(parts[1]);
  w.rank = rank;
  w.host = parts[2];
  w.endpoint = parts[3];
  return w;
}

// What every worker does after building its role: start the server, announce itself,
// then serve on the main thread until the controller says Shutdown.
absl::Status ServeWorker(const Config& config, const dist::MpiWorld& world, WorkerIdentity id,
                         grpc::Service* service, MainThreadQueue& queue) {
  HONE_ASSIGN_OR_RETURN(rpc::RunningServer server,
                        rpc::StartServer(config.String("rpc.host"), static_cast<int>(config.Int("rpc.port")),
                                         {service}, MaxMessageBytes(config)));
  id.endpoint = rpc::AnnouncedEndpoint(config.String("rpc.host"), server.port, world.host());
  HONE_RETURN_IF_ERROR(world.AllGatherStrings(Announce(id), "the start-up exchange of endpoints",
                                              config.Float("dist.timeout_s")).status());
  std::fprintf(stderr, "hone worker: role %s %d, rank %d, host %s, endpoint %s, pid %d\n", id.role.c_str(), id.index,
               id.rank, id.host.c_str(), id.endpoint.c_str(), static_cast<int>(getpid()));
  const std::string reason = queue.Serve();
  server.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::fprintf(stderr, "hone worker: rank %d stopped (%s)\n", id.rank, reason.c_str());
  return absl::OkStatus();
}

absl::Status RunRolloutWorker(const Config& config, const dist::MpiWorld& world, WorkerIdentity id,
                              const Placement& placement) {
  HONE_ASSIGN_OR_RETURN(Pretrained policy, LoadPretrained(config.String("model.path")));
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<LocalRollout> rollout, LocalRollout::Create(policy));
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<dist::Communicator> sync_comm,
                        dist::CreateMpiCommunicator(WeightSyncRanks(placement), "weight_sync",
                                                    config.Float("dist.timeout_s")));
  // Receive buffers shaped like the policy (the same config as the trainers').
  dist::NamedWeights buffers;
  for (const auto& item : policy.model->named_parameters()) buffers.emplace_back(item.key(), item.value().detach().clone());
  const int64_t bucket_bytes = config.Int("dist.sync_bucket_mb") << 20;
  MainThreadQueue queue;
  RolloutServiceImpl service(id, rollout.get(), &queue, [&](int64_t version) -> absl::StatusOr<proto::SyncWeightsResponse> {
    sync_comm->set_step(version);
    HONE_ASSIGN_OR_RETURN(dist::WeightSyncStats stats, dist::BroadcastWeights(*sync_comm, 0, buffers, bucket_bytes));
    HONE_RETURN_IF_ERROR(rollout->LoadWeights(buffers, version));
    proto::SyncWeightsResponse response;
    response.set_version(version);
    response.set_checksum(stats.checksum);
    response.set_seconds(stats.seconds);
    response.set_bytes(stats.bytes);
    return response;
  });
  return ServeWorker(config, world, id, &service, queue);
}

absl::Status RunRewardWorker(const Config& config, const dist::MpiWorld& world, WorkerIdentity id) {
  reward::RewardOptions options;
  options.fallback = config.String("reward.fallback");
  options.correct_weight = config.Float("reward.correct_weight");
  options.format_weight = config.Float("reward.format_weight");
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<LocalRewardScorer> scorer,
                        LocalRewardScorer::Create(config.StringList("reward.fns"), options));
  MainThreadQueue queue;
  RewardServiceImpl service(id, scorer.get(), &queue);
  return ServeWorker(config, world, id, &service, queue);
}

absl::Status RunTrainerWorker(const Config& config, const dist::MpiWorld& world, WorkerIdentity id,
                              const Placement& placement) {
  HONE_ASSIGN_OR_RETURN(TrainerOptions options, TrainerOptionsFromConfig(config));
  HONE_ASSIGN_OR_RETURN(Pretrained policy, LoadPretrained(config.String("model.path")));
  HONE_RETURN_IF_ERROR(CheckTrainingConfig(config));
  const double timeout_s = config.Float("dist.timeout_s");
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<dist::Communicator> trainer_comm,
                        dist::CreateMpiCommunicator(placement.RanksOf(Role::kTrainer), "trainer", timeout_s));
  std::unique_ptr<dist::Communicator> sync_comm;
  if (id.index == 0) {
    HONE_ASSIGN_OR_RETURN(sync_comm, dist::CreateMpiCommunicator(WeightSyncRanks(placement), "weight_sync", timeout_s));
  }
  dist::FsdpOptions fsdp;
  fsdp.bucket_bytes = config.Int("dist.fsdp_bucket_mb") << 20;
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<ShardedPolicyTrainer> trainer,
                        ShardedPolicyTrainer::Create(std::move(policy), options, trainer_comm.get(), fsdp));
  const int64_t bucket_bytes = config.Int("dist.sync_bucket_mb") << 20;
  MainThreadQueue queue;
  TrainerServiceImpl service(id, trainer.get(), &queue, [&](int64_t version) -> absl::StatusOr<proto::SyncWeightsResponse> {
    trainer_comm->set_step(version);
    HONE_ASSIGN_OR_RETURN(NamedTensors weights, trainer->FullWeights());
    proto::SyncWeightsResponse response;
    response.set_version(version);
    if (sync_comm) {
      sync_comm->set_step(version);
      HONE_ASSIGN_OR_RETURN(dist::WeightSyncStats stats, dist::BroadcastWeights(*sync_comm, 0, weights, bucket_bytes));
      response.set_checksum(stats.checksum);
      response.set_seconds(stats.seconds);
      response.set_bytes(stats.bytes);
    }
    return response;
  });
  return ServeWorker(config, world, id, &service, queue);
}

absl::Status RunController(const Config& config, const dist::MpiWorld& world, const std::string& token,
                           const Placement& placement) {
  // The controller needs the tokenizer and stop ids, and the data; it holds no model.
  absl::StatusOr<Pretrained> loaded = LoadPretrained(config.String("model.path"));
  if (!loaded.ok()) return Annotate(loaded.status(), "model.path");
  Pretrained policy = *std::move(loaded);
  HONE_ASSIGN_OR_RETURN(data::DataSplits splits, data::LoadSplits(config));
  HONE_RETURN_IF_ERROR(
      CheckPromptLengths(config, *policy.tokenizer, policy.model->config().max_position_embeddings, splits));
  const int64_t max_positions = policy.model->config().max_position_embeddings;
  policy.model = CausalLM(nullptr);
  std::optional<Validator> validator;  // eval.* settings matter only when validating
  const bool validate = config.Int("trainer.val_every") > 0 && !config.Bool("trainer.async_rollout");
  if (validate) {
    HONE_ASSIGN_OR_RETURN(Validator created, Validator::Create(config, splits.held_out));
    validator.emplace(std::move(created));
  }
  HONE_ASSIGN_OR_RETURN(std::vector<std::string> announced,
                        world.AllGatherStrings("", "the start-up exchange of endpoints", config.Float("dist.timeout_s")));
  std::vector<WorkerEndpoint> rollouts, rewards, trainers, all;
  std::fprintf(stderr, "placement (%d ranks):\n  rank 0: controller on %s\n", world.size(), world.host().c_str());
  for (int rank = 1; rank < world.size(); ++rank) {
    HONE_ASSIGN_OR_RETURN(WorkerEndpoint w, ParseAnnouncement(announced[rank], rank));
    std::fprintf(stderr, "  rank %d: %s %d on %s at %s\n", rank, w.role.c_str(), w.index, w.host.c_str(),
                 w.endpoint.c_str());
    (w.role == "rollout" ? rollouts : w.role == "reward" ? rewards : trainers).push_back(w);
    all.push_back(w);
  }
  RpcOptions options;
  options.token = token;
  options.timeout_s = config.Float("rpc.timeout_s");
  options.health_timeout_s = config.Float("rpc.health_timeout_s");
  options.max_message_bytes = MaxMessageBytes(config);
  RemoteRollout rollout(rollouts, options);
  RemoteRewardScorer scorer(rewards, options);
  // trainer.ppo_mini_batch_size counts prompts (verl); the trainer cuts sequences.
  RemoteTrainer trainer(trainers, options, config.Int("trainer.ppo_mini_batch_size") * config.Int("rollout.n"));

  // Declared before the monitor, whose threads feed it, so that it outlives them.
  std::unique_ptr<MetricsExporter> exporter = StartMetricsExporter(config);
  // A hung worker is invisible to mpirun: the heartbeat ends the job, naming it. The
  // monitor's thread must not call MPI (only the main thread does), so it exits the
  // process non-zero and mpirun tears the rest of the job down.
  HealthMonitor monitor(all, options, config.Float("rpc.health_interval_s"), [](const std::string& message) {
    std::fprintf(stderr, "hone train: error: %s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(1);
  });
  if (exporter) {
    monitor.SetProbeObserver([&exporter](const WorkerEndpoint& w, bool answered) {
      exporter->SetWorkerUp(w.role, w.rank, w.host, answered);
    });
  }
  monitor.Start();

  GrpoRoles roles;
  roles.exporter = exporter.get();
  roles.rollout = &rollout;
  roles.scorer = &scorer;
  roles.trainer = &trainer;
  roles.sync_weights = [&](int64_t version) -> absl::StatusOr<Metrics> {
    // Trainers and rollouts join one broadcast: call both groups at once.
    absl::StatusOr<std::vector<proto::SyncWeightsResponse>> from_trainers, from_rollouts;
    HONE_RETURN_IF_ERROR(FanOut(2, [&](int side) -> absl::Status {
      if (side == 0) {
        from_trainers = trainer.SyncWeights(version);
        return from_trainers.status();
      }
      from_rollouts = rollout.SyncWeights(version);
      return from_rollouts.status();
    }));
    const proto::SyncWeightsResponse& sent = from_trainers->front();
    for (size_t i = 0; i < from_rollouts->size(); ++i) {
      if ((*from_rollouts)[i].checksum() != sent.checksum()) {
        return absl::DataLossError(absl::StrCat(Describe(rollout.workers()[i]), " holds weights with checksum ",
                                                (*from_rollouts)[i].checksum(), " after the sync of version ", version,
                                                ", the trainers sent ", sent.checksum()));
      }
    }
    // seconds_rpc: the gRPC overhead of this step (wall time of each call minus the work
    // its worker reported; the slowest worker of each fan-out), summed over the three
    // remote roles. The loop calls sync_weights once per step, after generate, score,
    // log-probs and update, so this covers the step's calls up to and including this sync
    // (the trainer's and the rollouts' SyncWeights run concurrently and both count, so
    // the sync's share is an upper bound). A checkpoint written after the sync counts in
    // the next step. Read by tools/bench/distributed_step.
    const double seconds_rpc = rollout.TakeRpcSeconds() + scorer.TakeRpcSeconds() + trainer.TakeRpcSeconds();
    return Metrics{{"weight_sync_bytes", sent.bytes()},
                   {"weight_sync_gbps", sent.seconds() > 0 ? sent.bytes() / sent.seconds() / 1e9 : 0},
                   {"seconds_rpc", seconds_rpc}};
  };
  // Validation samples on the rollout workers, which hold the policy just synced; the
  // evaluator scores in this process. With trainer.async_rollout they hold the previous
  // step's policy at that point, so it is left out there (a note says so).
  if (validator) {
    roles.validate = [&]() -> absl::StatusOr<Metrics> {
      return validator->Run(GenerateWithRollout(rollout), max_positions, *policy.tokenizer, policy.stop_token_ids);
    };
  } else if (config.Int("trainer.val_every") > 0) {
    std::fprintf(stderr, "note: trainer.val_every is ignored under mpirun with trainer.async_rollout (the rollout "
                         "workers hold the previous policy when a step ends); run `hone eval` on a checkpoint\n");
  }
  absl::Status status = RunGrpoLoop(config, roles, policy, splits);
  monitor.Stop();
  const std::string reason = !status.ok()        ? "the controller stopped on an error"
                             : StopRequested() ? absl::StrCat("the controller stopped on ", StopSignalName())
                                               : "training finished";
  // Best effort: on error mpirun ends whatever does not stop.
  (void)rollout.Shutdown(reason);
  (void)scorer.Shutdown(reason);
  (void)trainer.Shutdown(reason);
  return status;
}

}  // namespace

absl::Status RunDistributedTraining(const Config& config, const dist::MpiWorld& world) {
  const Placement placement = PlacementFromConfig(config);
  HONE_RETURN_IF_ERROR(dist::CheckWorldSize(placement, world.size()));
  if (config.String("model.path").empty()) {
    return absl::InvalidArgumentError("model.path is empty: name the policy's HF model directory");
  }
  const double timeout_s = config.Float("dist.timeout_s");
  std::string token;
  if (world.rank() == 0) {
    HONE_ASSIGN_OR_RETURN(token, rpc::RandomToken());
  }
  HONE_ASSIGN_OR_RETURN(token, world.BroadcastString(token, 0, "the job token broadcast", timeout_s));

  const Role role = placement.RoleOf(world.rank());
  WorkerIdentity id;
  id.role = dist::RoleName(role);
  id.rank = world.rank();
  id.index = placement.IndexInRole(world.rank());
  id.host = world.host();
  id.token = token;
  absl::Status status;
  switch (role) {
    case Role::kController: status = RunController(config, world, token, placement); break;
    case Role::kRollout: status = RunRolloutWorker(config, world, id, placement); break;
    case Role::kReward: status = RunRewardWorker(config, world, id); break;
    case Role::kTrainer: status = RunTrainerWorker(config, world, id, placement); break;
  }
  return Annotate(status, absl::StrCat(id.role, " rank ", world.rank(), " on ", world.host()));
}

}  // namespace hone
