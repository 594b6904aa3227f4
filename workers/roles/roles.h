// The three worker roles of one policy step, as the controller sees them (DESIGN.md §1-2).
// With world size 1 they run in the controller's process (workers/*/local_*.h); the
// distributed runtime implements the same interfaces over gRPC, so the controller's loop
// does not change.
//
// Batches that cross these interfaces (framework/data/batch.h):
//
// Prompts (controller -> rollout), G rows:
//   tensor  prompt_ids     [G,P] int64, right-padded with 0
//   ints    prompt_len     tokens of each prompt
//   ints    group_id       distinct per prompt
//   strings prompt         the templated prompt text
//   strings ground_truth   integer answer as text
//
// Trajectories (rollout -> reward, controller, trainer), N = G*n rows, group-major:
//   tensor  input_ids        [N,T] int64: prompt, response, then padding (0)
//   tensor  attention_mask   [N,T] bool: real tokens
//   tensor  response_mask    [N,T] float: 1 where token t is a response token
//   tensor  rollout_logprobs [N,T] float: log p(token t) when the rollout sampled it
//   ints    group_id, prompt_len, response_len, truncated (1 = cut at max_new_tokens)
//   strings prompt, ground_truth, response (decoded response text)
//   meta    temperature, policy_version
// Reward adds:   tensor reward [N] float (weighted total), reward/<fn> [N] per component.
// Controller adds: tensor advantages [N,T] float, old_logprobs [N,T], ref_logprobs [N,T].
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "framework/data/batch.h"
#include "framework/engine/engine.h"

namespace hone {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;
using Metrics = std::map<std::string, double>;

class RolloutEngine {
 public:
  virtual ~RolloutEngine() = default;
  // Samples params.n responses per prompt. Returns the trajectory batch described above.
  virtual absl::StatusOr<Batch> Generate(const Batch& prompts, const SamplingParams& params) = 0;
  // Replaces the policy's weights (all of them, by HF name) and records `version`.
  virtual absl::Status LoadWeights(const NamedTensors& weights, int64_t version) = 0;
  virtual int64_t policy_version() const = 0;
};

class RewardScorer {
 public:
  virtual ~RewardScorer() = default;
  // Adds `reward` and `reward/<fn>` columns to `trajectories`; leaves it unchanged on error.
  virtual absl::Status Score(Batch& trajectories) = 0;
};

struct LogProbs {
  torch::Tensor old_logprobs;  // [N,T] current policy (before this step's update)
  torch::Tensor ref_logprobs;  // [N,T] frozen reference; undefined without one
  torch::Tensor entropy;       // [N,T] current policy
  double policy_seconds = 0;     // time spent on the current policy's pass
  double reference_seconds = 0;  // time spent on the reference policy's pass
};

class PolicyTrainer {
 public:
  virtual ~PolicyTrainer() = default;
  // Log-probabilities of the trajectories' tokens under the current and reference policy.
  virtual absl::StatusOr<LogProbs> ComputeLogProbs(const Batch& trajectories) = 0;
  // One policy update (ppo epochs x mini-batches) on trajectories carrying advantages and
  // old_logprobs (and ref_logprobs when a KL term is used). Returns train metrics.
  virtual absl::StatusOr<Metrics> Update(const Batch& trajectories) = 0;
  // The policy's full weights by HF name, for the weight sync to rollout workers.
  virtual absl::StatusOr<NamedTensors> PolicyWeights() = 0;
  // Writes the policy in HF layout (config.json, model.safetensors, tokenizer.json), the
  // optimizer state (placement-independent slices) and the schedule's position under `dir`.
  virtual absl::Status SaveCheckpoint(const std::string& dir) = 0;
  // Restores the optimizer state and the schedule's position from a checkpoint written by
  // SaveCheckpoint under any placement. The weights are the checkpoint's model, loaded
  // when the trainer was created (trainer.resume sets model.path to the checkpoint).
  virtual absl::Status LoadCheckpoint(const std::string& dir) = 0;
};

}  // namespace hone
