#include "workers/rollout/local_rollout.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone {

LocalRollout::LocalRollout(CausalLM model, std::unique_ptr<Tokenizer> tokenizer)
    : model_(model), tokenizer_(std::move(tokenizer)), engine_(model) {}

absl::StatusOr<std::unique_ptr<LocalRollout>> LocalRollout::Create(const Pretrained& policy) {
  CausalLM copy(policy.model->config());
  HONE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, TokenizerFromJson(policy.tokenizer_json));
  std::unique_ptr<LocalRollout> rollout(new LocalRollout(copy, std::move(tokenizer)));
  NamedTensors weights;
  for (const auto& item : policy.model->named_parameters()) weights.emplace_back(item.key(), item.value());
  HONE_RETURN_IF_ERROR(rollout->LoadWeights(weights, 0));
  return rollout;
}

absl::Status LocalRollout::LoadWeights(const NamedTensors& weights, int64_t version) {
  HONE_RETURN_IF_ERROR(CatchTorch("loading rollout weights", [&]() -> absl::Status {
    torch::NoGradGuard no_grad;
    auto params = model_->named_parameters();
    if (weights.size() != params.size()) {
      return absl::InvalidArgumentError(absl::StrCat("weight sync sent ", weights.size(),
                                                     " tensors, the rollout model has ", params.size()));
    }
    for (const auto& [name, tensor] : weights) {
      auto* target = params.find(name);
      if (target == nullptr) return absl::NotFoundError(absl::StrCat("weight sync sent unknown tensor '", name, "'"));
      target->copy_(tensor);
    }
    return absl::OkStatus();
  }));
  version_ = version;
  return absl::OkStatus();
}

absl::StatusOr<Batch> LocalRollout::Generate(const Batch& prompts, const SamplingParams& params) {
  HONE_RETURN_IF_ERROR(prompts.Require({"prompt_ids"}, {"prompt", "ground_truth"}, {"prompt_len", "group_id"}));
  const int64_t G = prompts.size(), n = params.n;
  const auto& lengths = prompts.ints("prompt_len");
  std::vector<std::vector<int64_t>> prompt_ids(G);
  auto ids_acc = prompts.tensor("prompt_ids").accessor<int64_t, 2>();
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t t = 0; t < lengths[g]; ++t) prompt_ids[g].push_back(ids_acc[g][t]);
  }
  // Each group samples from its own random stream, keyed by its group id: the tokens do not
  // depend on how the prompts are spread over rollout workers.
  SamplingParams streamed = params;
  streamed.prompt_streams = prompts.ints("group_id");
  // Never sample an id the tokenizer cannot decode (a padded embedding row); the trainer
  // scores over the same ids (config().tokenizer_vocab_size), so the log-probs agree.
  const int64_t decodable = tokenizer_->VocabSize();
  streamed.vocab_limit = streamed.vocab_limit > 0 ? std::min(streamed.vocab_limit, decodable) : decodable;
  HONE_ASSIGN_OR_RETURN(GenerationResult result, engine_.Generate(prompt_ids, streamed));

  const int64_t N = G * n;
  int64_t T = 1;
  for (const auto& seq : result.sequences) {
    T = std::max<int64_t>(T, lengths[seq.prompt_index] + static_cast<int64_t>(seq.tokens.size()));
  }
  auto input_ids = torch::zeros({N, T}, torch::kInt64);
  auto attention = torch::zeros({N, T}, torch::kBool);
  auto response_mask = torch::zeros({N, T}, torch::kFloat32);
  auto logprobs = torch::zeros({N, T}, torch::kFloat32);
  auto ids = input_ids.accessor<int64_t, 2>();
  auto att = attention.accessor<bool, 2>();
  auto rmask = response_mask.accessor<float, 2>();
  auto lp = logprobs.accessor<float, 2>();
  std::vector<int64_t> group_id(N), prompt_len(N), response_len(N), truncated(N);
  std::vector<std::string> prompt_text(N), ground_truth(N), response(N);
  for (int64_t i = 0; i < N; ++i) {
    const GeneratedSequence& seq = result.sequences[i];
    const int64_t g = seq.prompt_index, len = lengths[g];
    for (int64_t t = 0; t < len; ++t) {
      ids[i][t] = prompt_ids[g][t];
      att[i][t] = true;
    }
    for (size_t t = 0; t < seq.tokens.size(); ++t) {
      ids[i][len + t] = seq.tokens[t];
      att[i][len + t] = true;
      rmask[i][len + t] = 1.0f;
      lp[i][len + t] = seq.logprobs[t];
    }
    group_id[i] = prompts.ints("group_id")[g];
    prompt_len[i] = len;
    response_len[i] = static_cast<int64_t>(seq.tokens.size());
    truncated[i] = seq.finish == FinishReason::kLength ? 1 : 0;
    prompt_text[i] = prompts.strings("prompt")[g];
    ground_truth[i] = prompts.strings("ground_truth")[g];
    std::vector<int64_t> text_tokens;
    for (int64_t token : seq.tokens) {
      if (!tokenizer_->IsSpecialToken(token)) text_tokens.push_back(token);
    }
    HONE_ASSIGN_OR_RETURN(response[i], tokenizer_->Decode(text_tokens));
  }
  Batch out;
  HONE_RETURN_IF_ERROR(out.SetTensor("input_ids", input_ids));
  HONE_RETURN_IF_ERROR(out.SetTensor("attention_mask", attention));
  HONE_RETURN_IF_ERROR(out.SetTensor("response_mask", response_mask));
  HONE_RETURN_IF_ERROR(out.SetTensor("rollout_logprobs", logprobs));
  HONE_RETURN_IF_ERROR(out.SetInts("group_id", std::move(group_id)));
  HONE_RETURN_IF_ERROR(out.SetInts("prompt_len", std::move(prompt_len)));
  HONE_RETURN_IF_ERROR(out.SetInts("response_len", std::move(response_len)));
  HONE_RETURN_IF_ERROR(out.SetInts("truncated", std::move(truncated)));
  HONE_RETURN_IF_ERROR(out.SetStrings("prompt", std::move(prompt_text)));
  HONE_RETURN_IF_ERROR(out.SetStrings("ground_truth", std::move(ground_truth)));
  HONE_RETURN_IF_ERROR(out.SetStrings("response", std::move(response)));
  out.meta["temperature"] = absl::StrFormat("%.17g", params.temperature);  // exact round trip
  out.meta["policy_version"] = absl::StrCat(version_);
  return out;
}

absl::StatusOr<Batch> MakePromptBatch(const Tokenizer& tokenizer,
                                      const std::vector<std::string>& prompts,
                                      const std::vector<std::string>& ground_truths,
                                      int64_t first_group_id) {
  const int64_t G = static_cast<int64_t>(prompts.size());
  std::vector<std::vector<int64_t>> encoded(G);
  for (int64_t g = 0; g < G; ++g) {
    HONE_ASSIGN_OR_RETURN(encoded[g], tokenizer.Encode(prompts[g]));
    if (encoded[g].empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", g, " encodes to no tokens"));
  }
  return PromptBatchFromIds(encoded, prompts, ground_truths, first_group_id);
}

absl::StatusOr<Batch> PromptBatchFromIds(const std::vector<std::vector<int64_t>>& prompt_ids,
                                         const std::vector<std::string>& prompts,
                                         const std::vector<std::string>& ground_truths, int64_t first_group_id) {
  const int64_t G = static_cast<int64_t>(prompt_ids.size());
  int64_t P = 1;
  for (const auto& ids : prompt_ids) P = std::max<int64_t>(P, static_cast<int64_t>(ids.size()));
  auto ids = torch::zeros({G, P}, torch::kInt64);
  auto acc = ids.accessor<int64_t, 2>();
  std::vector<int64_t> lengths(G), groups(G);
  for (int64_t g = 0; g < G; ++g) {
    for (size_t t = 0; t < prompt_ids[g].size(); ++t) acc[g][t] = prompt_ids[g][t];
    lengths[g] = static_cast<int64_t>(prompt_ids[g].size());
    groups[g] = first_group_id + g;
  }
  Batch batch;
  HONE_RETURN_IF_ERROR(batch.SetTensor("prompt_ids", ids));
  HONE_RETURN_IF_ERROR(batch.SetInts("prompt_len", lengths));
  HONE_RETURN_IF_ERROR(batch.SetInts("group_id", groups));
  HONE_RETURN_IF_ERROR(batch.SetStrings("prompt", prompts));
  HONE_RETURN_IF_ERROR(batch.SetStrings("ground_truth", ground_truths));
  return batch;
}

}  // namespace hone
