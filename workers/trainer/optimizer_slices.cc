#include "workers/trainer/optimizer_slices.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone {
namespace {

namespace fs = std::filesystem;

std::string StateKey(const torch::Tensor& param) { return c10::guts::to_string(param.unsafeGetTensorImpl()); }

}  // namespace

std::string OptimizerSliceFileName(int rank, int ranks) {
  return absl::StrCat("optimizer_shard_", rank, "_of_", ranks, ".pt");
}

absl::Status WriteOptimizerSlice(const std::string& path, const OptimizerSlice& slice) {
  return CatchTorch(absl::StrCat("writing the optimizer slice ", path), [&] {
    std::vector<torch::Tensor> parts = {torch::tensor({slice.begin, slice.end, slice.step}, torch::kInt64),
                                        slice.exp_avg.contiguous(), slice.exp_avg_sq.contiguous()};
    torch::save(parts, path);
  });
}

absl::StatusOr<std::vector<OptimizerSlice>> ReadOptimizerSlices(const std::string& dir) {
  std::vector<OptimizerSlice> slices;
  const std::regex name("optimizer_shard_[0-9]+_of_[0-9]+\\.pt");
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (!std::regex_match(entry.path().filename().string(), name)) continue;
    HONE_RETURN_IF_ERROR(CatchTorch(absl::StrCat("reading ", entry.path().string()), [&] {
      std::vector<torch::Tensor> parts;
      torch::load(parts, entry.path().string());
      TORCH_CHECK(parts.size() == 3 && parts[0].numel() == 3, "not an optimizer slice written by Hone");
      OptimizerSlice slice;
      slice.begin = parts[0][0].item<int64_t>();
      slice.end = parts[0][1].item<int64_t>();
      slice.step = parts[0][2].item<int64_t>();
      TORCH_CHECK(parts[1].numel() == slice.end - slice.begin && parts[2].numel() == slice.end - slice.begin,
                  "slice [", slice.begin, ", ", slice.end, ") holds ", parts[1].numel(), " elements");
      slice.exp_avg = parts[1];
      slice.exp_avg_sq = parts[2];
      slices.push_back(std::move(slice));
    }));
  }
  if (error) return absl::NotFoundError(absl::StrCat("cannot list checkpoint directory ", dir, ": ", error.message()));
  if (slices.empty()) {
    return absl::NotFoundError(absl::StrCat("no optimizer_shard_*_of_*.pt in ", dir, ": not a complete checkpoint"));
  }
  return slices;
}

OptimizerSlice AdamWToSlice(torch::optim::AdamW& optimizer, const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> avg, avg_sq;
  OptimizerSlice slice;
  for (const auto& p : params) {
    auto it = optimizer.state().find(StateKey(p));
    if (it == optimizer.state().end()) {
      avg.push_back(torch::zeros({p.numel()}, p.options()));
      avg_sq.push_back(torch::zeros({p.numel()}, p.options()));
      continue;
    }
    auto& state = static_cast<torch::optim::AdamWParamState&>(*it->second);
    avg.push_back(state.exp_avg().detach().reshape({-1}));
    avg_sq.push_back(state.exp_avg_sq().detach().reshape({-1}));
    slice.step = std::max<int64_t>(slice.step, state.step());
  }
  slice.exp_avg = torch::cat(avg);
  slice.exp_avg_sq = torch::cat(avg_sq);
  slice.end = slice.exp_avg.numel();
  return slice;
}

absl::Status AdamWFromSlices(torch::optim::AdamW& optimizer, const std::vector<torch::Tensor>& params,
                             const std::vector<OptimizerSlice>& slices) {
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  std::vector<const OptimizerSlice*> ordered;
  for (const auto& s : slices) ordered.push_back(&s);
  std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
  int64_t covered = 0;
  for (const auto* s : ordered) {
    if (s->begin != covered) {
      return absl::InvalidArgumentError(absl::StrCat("the optimizer slices leave a gap or overlap at element ", covered,
                                                     " (next slice starts at ", s->begin, ")"));
    }
    covered = s->end;
  }
  if (covered != total) {
    return absl::InvalidArgumentError(absl::StrCat("the optimizer slices cover ", covered,
                                                   " elements but the policy has ", total,
                                                   ": the checkpoint belongs to another model"));
  }
  return CatchTorch("loading the optimizer state", [&] {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> avg, avg_sq;
    for (const auto* s : ordered) {
      avg.push_back(s->exp_avg.reshape({-1}));
      avg_sq.push_back(s->exp_avg_sq.reshape({-1}));
    }
    auto full_avg = torch::cat(avg), full_avg_sq = torch::cat(avg_sq);
    int64_t offset = 0;
    for (const auto& p : params) {
      auto state = std::make_unique<torch::optim::AdamWParamState>();
      state->step(ordered.front()->step);
      state->exp_avg(full_avg.narrow(0, offset, p.numel()).view(p.sizes()).to(p.dtype()).clone());
      state->exp_avg_sq(full_avg_sq.narrow(0, offset, p.numel()).view(p.sizes()).to(p.dtype()).clone());
      optimizer.state()[StateKey(p)] = std::move(state);
      offset += p.numel();
    }
  });
}

absl::Status WriteTrainerState(const std::string& dir, int64_t schedule_steps, int64_t skipped_updates) {
  nlohmann::json j = {{"schedule_steps", schedule_steps}, {"skipped_updates", skipped_updates}};
  std::ofstream out(fs::path(dir) / "trainer_state.json");
  out << j.dump(2) << "\n";
  if (!out) return absl::InternalError(absl::StrCat("cannot write trainer_state.json in ", dir));
  return absl::OkStatus();
}

absl::StatusOr<TrainerState> ReadTrainerState(const std::string& dir) {
  const fs::path path = fs::path(dir) / "trainer_state.json";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("no ", path.string(), ": not a complete checkpoint"));
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("schedule_steps") || !j["schedule_steps"].is_number_integer()) {
    return absl::DataLossError(absl::StrCat(path.string(), " is damaged: it needs an integer schedule_steps"));
  }
  TrainerState state;
  state.schedule_steps = j["schedule_steps"].get<int64_t>();
  if (j.contains("skipped_updates") && j["skipped_updates"].is_number_integer()) {
    state.skipped_updates = j["skipped_updates"].get<int64_t>();
  }
  return state;
}

}  // namespace hone
