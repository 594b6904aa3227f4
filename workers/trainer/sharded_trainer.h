// One trainer rank of an FSDP trainer group: the policy (and the frozen reference) sharded
// over the trainer communicator (framework/dist/fsdp.h), computing log-probs and running
// the GRPO update on this rank's share of the rows. Every method is collective over the
// trainer group: the controller sends each rank its share at the same time.
//
// W ranks make the update of one: every loss term is divided by the counts of the whole
// global mini-batch (all-reduced), gradients are summed by the reduce-scatter, the grad
// norm is global, and the sharded AdamW is elementwise the same as AdamW on the full model.
#pragma once

#include <memory>
#include <string>

#include "framework/dist/communicator.h"
#include "framework/dist/fsdp.h"
#include "workers/trainer/local_trainer.h"

namespace hone {

// Batch meta key of an Update share: this rank's rows of each global mini-batch, in
// order, as "a,b,c" (the controller cuts every mini-batch across the ranks).
inline constexpr char kMiniBatchRowsKey[] = "mini_batch_rows";

class ShardedPolicyTrainer {
 public:
  static absl::StatusOr<std::unique_ptr<ShardedPolicyTrainer>> Create(Pretrained policy, TrainerOptions options,
                                                                      dist::Communicator* trainer_comm,
                                                                      dist::FsdpOptions fsdp);

  absl::StatusOr<LogProbs> ComputeLogProbs(const Batch& share);
  absl::StatusOr<Metrics> Update(const Batch& share);
  // The full policy by HF name, the same on every rank (all-gathered).
  absl::StatusOr<NamedTensors> FullWeights();
  // Rank 0 writes the model in HF layout (+ tokenizer.json); every rank writes its
  // optimizer slice as optimizer_shard_<r>_of_<W>.pt (placement-independent offsets).
  absl::Status SaveCheckpoint(const std::string& dir);
  // Optimizer state (re-split from any placement's slices) and the schedule's position
  // from `dir`; the weights were loaded at start-up from model.path (the checkpoint).
  absl::Status LoadCheckpoint(const std::string& dir);

  int64_t resident_bytes() const;

 private:
  ShardedPolicyTrainer(Pretrained policy, TrainerOptions options, dist::Communicator* comm);
  // Runs `fn` with the full parameters of `params` gathered, releasing them afterwards.
  template <typename Fn>
  absl::Status WithGathered(dist::ShardedParameters& params, Fn&& fn);

  Pretrained policy_;
  CausalLM reference_{nullptr};
  TrainerOptions options_;
  dist::Communicator* comm_;
  std::unique_ptr<dist::ShardedParameters> sharded_policy_, sharded_reference_;
  NonFiniteStepGuard skip_guard_;
  int64_t schedule_steps_ = 0;
};

}  // namespace hone
