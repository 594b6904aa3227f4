#include "workers/controller/data_checks.h"

#include <algorithm>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "workers/eval/evaluator.h"
#include "workers/trainer/local_trainer.h"

namespace hone {
namespace {

// Fewer training prompts than this many steps' worth means the held-out split (or the
// dataset) is too small for the job: the loader would repeat the same few prompts.
constexpr int64_t kFewSteps = 4;

// Keeps the examples whose templated prompt fits `limit` tokens; counts the others, or
// returns an error naming the first when not filtering.
absl::Status FilterSplit(std::vector<data::Example>& examples, const Tokenizer& tokenizer,
                         const data::PromptFormatter& format, int64_t limit, const std::string& limit_why,
                         bool filter, const char* split_name, int64_t* dropped) {
  std::vector<data::Example> kept;
  kept.reserve(examples.size());
  for (data::Example& example : examples) {
    HONE_ASSIGN_OR_RETURN(std::string prompt, format.Format(example.prompt));
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer.Encode(prompt));
    const int64_t length = static_cast<int64_t>(ids.size());
    if (length <= limit) {
      kept.push_back(std::move(example));
      continue;
    }
    if (!filter) {
      return absl::InvalidArgumentError(absl::StrCat(
          split_name, " example ", example.index, " has a ", length, "-token prompt, longer than ", limit_why,
          ": set data.filter_overlong_prompts=true to drop such prompts, or raise the limit"));
    }
    ++*dropped;
  }
  examples = std::move(kept);
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPromptLengths(const Config& config, const Tokenizer& tokenizer, int64_t max_position_embeddings,
                                data::DataSplits& splits) {
  const int64_t max_prompt = config.Int("data.max_prompt_length");
  const int64_t max_new = config.Int("rollout.max_new_tokens");
  const int64_t room = max_position_embeddings - max_new;
  if (room < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rollout.max_new_tokens=", max_new, " leaves no room for a prompt in the model's max_position_embeddings=",
        max_position_embeddings));
  }
  int64_t limit = max_prompt;
  std::string limit_why = absl::StrCat("data.max_prompt_length=", max_prompt);
  if (room < max_prompt) {
    limit = room;
    limit_why = absl::StrCat(room, " tokens (the model's max_position_embeddings=", max_position_embeddings,
                             " minus rollout.max_new_tokens=", max_new, ")");
  }
  const bool filter = config.Bool("data.filter_overlong_prompts");
  HONE_ASSIGN_OR_RETURN(data::PromptFormatter format, data::PromptFormatterFromConfig(config));
  int64_t dropped_train = 0, dropped_held_out = 0;
  HONE_RETURN_IF_ERROR(FilterSplit(splits.train, tokenizer, format, limit, limit_why, filter, "training",
                                   &dropped_train));
  HONE_RETURN_IF_ERROR(FilterSplit(splits.held_out, tokenizer, format, limit, limit_why, filter, "held-out",
                                   &dropped_held_out));
  if (dropped_train + dropped_held_out > 0) {
    std::cerr << "warning: data.filter_overlong_prompts: dropped " << dropped_train << " training and "
              << dropped_held_out << " held-out prompts longer than " << limit_why << "\n";
  }
  if (splits.train.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("every training prompt is longer than ", limit_why));
  }
  return absl::OkStatus();
}

absl::Status CheckSftLengths(const Config& config, const Tokenizer& tokenizer, int64_t max_position_embeddings,
                             const std::vector<data::Example>& examples) {
  HONE_ASSIGN_OR_RETURN(data::PromptFormatter format, data::PromptFormatterFromConfig(config));
  for (const data::Example& example : examples) {
    HONE_ASSIGN_OR_RETURN(std::string prompt, format.Format(example.prompt));
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> prompt_ids, tokenizer.Encode(prompt));
    HONE_ASSIGN_OR_RETURN(std::vector<int64_t> solution_ids, tokenizer.Encode(example.solution));
    const int64_t length = static_cast<int64_t>(prompt_ids.size() + solution_ids.size()) + 1;  // + end-of-text
    if (length > max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat(
          "training example ", example.index, " is ", length, " tokens (prompt ", prompt_ids.size(),
          ", solution and end-of-text ", length - static_cast<int64_t>(prompt_ids.size()),
          "), longer than the model's max_position_embeddings=", max_position_embeddings,
          ": shorten or drop it, or use a model with more positions"));
    }
  }
  return absl::OkStatus();
}

void WarnAboutSplit(const data::DataSplits& splits, int64_t batch_size, const std::string& batch_key) {
  const int64_t train = static_cast<int64_t>(splits.train.size());
  if (splits.removed_overlap > 0) {
    std::cerr << "note: dropped " << splits.removed_overlap
              << " training examples whose prompt is also a held-out prompt\n";
  }
  if (train < kFewSteps * batch_size) {
    std::cerr << "warning: only " << train << " training prompts remain after holding out " << splits.held_out.size()
              << " (" << splits.removed_overlap << " more dropped as duplicates of held-out prompts): fewer than "
              << kFewSteps << " steps of " << batch_key << "=" << batch_size
              << "; lower data.val_size, give data.val_path, or add data\n";
  }
}

int64_t MaxPolicyLag(const Config& config) {
  const int64_t lag = config.Int("trainer.max_policy_lag");
  if (lag >= 0) return lag;
  return config.Bool("trainer.async_rollout") ? 1 : 0;
}

absl::Status CheckTrainingConfig(const Config& config) {
  HONE_RETURN_IF_ERROR(TrainerOptionsFromConfig(config).status());
  if (config.Bool("trainer.async_rollout") && MaxPolicyLag(config) < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trainer.async_rollout=true trains each step on rollouts one policy version old, but "
        "trainer.max_policy_lag=", config.Int("trainer.max_policy_lag"),
        " refuses them: set trainer.max_policy_lag=1 (or -1, its default), or trainer.async_rollout=false"));
  }
  return eval::EvalOptionsFromConfig(config).status();
}

}  // namespace hone
