// ShardedParameters under mpirun (2 and 4 ranks): sharded training must match a
// single-process reference (same model, torch::optim::AdamW on the full data,
// clip_grad_norm_) to 1e-6, memory must fall as 1/W, and optimizer state must survive a
// save/load across placements.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include "framework/dist/communicator.h"
#include "framework/dist/fsdp.h"
#include "tests/dist/mpi_test_util.h"

namespace hone::dist {
namespace {

using mpitest::AllRanks;
using mpitest::WorldRank;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;
using Slice = ShardedParameters::OptimizerSlice;

constexpr int64_t kRows = 24;           // divisible by 1, 2, 3, 4
constexpr double kMaxNorm = 0.05;       // small enough that both steps clip
constexpr double kTolerance = 1e-6;     // float32 params of magnitude < 1
const FsdpOptions kSmallBuckets{200};   // 3 buckets of odd sizes: padding at W = 2, 4

double Lr(int step) { return 1e-2 * step; }  // a different lr per step exercises set-lr

// eps comparable to the clipped grads (~4e-3 per element) makes the update depend on the
// grads' scale, so a wrong clip coefficient or a mean instead of a sum shows in the params.
torch::optim::AdamWOptions Adam() {
  return torch::optim::AdamWOptions(0).betas({0.9, 0.95}).weight_decay(0.1).eps(1e-3);
}

// Identical weights wherever it is built: Linear(7,13) -> tanh -> Linear(13,5).
torch::nn::Sequential MakeModel() {
  torch::manual_seed(7);
  return torch::nn::Sequential(torch::nn::Linear(7, 13), torch::nn::Tanh(), torch::nn::Linear(13, 5));
}

std::pair<torch::Tensor, torch::Tensor> Data() {
  torch::manual_seed(123);
  torch::Tensor x = torch::randn({kRows, 7});
  return {x, torch::randn({kRows, 5})};
}

// Sum of squared errors over rows [begin, end), divided by the global row count.
torch::Tensor Loss(torch::nn::Sequential& model, int64_t begin, int64_t end) {
  auto [x, y] = Data();
  torch::Tensor pred = model->forward(x.narrow(0, begin, end - begin));
  return (pred - y.narrow(0, begin, end - begin)).pow(2).sum() / kRows;
}

Named Params(torch::nn::Sequential& model) {
  Named out;
  for (const auto& p : model->named_parameters()) out.emplace_back(p.key(), p.value().detach().clone());
  return out;
}

// The single-process reference: `steps` AdamW steps on the full data. norms gets the
// grad norm of every step.
Named Reference(int steps, std::vector<double>* norms = nullptr) {
  auto model = MakeModel();
  torch::optim::AdamW adam(model->parameters(), Adam());
  for (int step = 1; step <= steps; ++step) {
    adam.zero_grad();
    Loss(model, 0, kRows).backward();
    const double norm = torch::nn::utils::clip_grad_norm_(model->parameters(), kMaxNorm);
    if (norms) norms->push_back(norm);
    for (auto& g : adam.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(Lr(step));
    adam.step();
  }
  return Params(model);
}

// One sharded step: this group rank's rows only.
double ShardedStep(ShardedParameters& sharded, torch::nn::Sequential& model, Communicator& comm,
                   int step) {
  EXPECT_TRUE(sharded.Gather().ok());
  const int64_t begin = comm.rank() * kRows / comm.size(), end = (comm.rank() + 1) * kRows / comm.size();
  Loss(model, begin, end).backward();
  EXPECT_TRUE(sharded.ReduceScatterGrads().ok());
  sharded.Release();
  auto norm = sharded.ClipGradNorm(kMaxNorm);
  EXPECT_TRUE(norm.ok()) << norm.status();
  EXPECT_TRUE(sharded.OptimizerStep(Lr(step)).ok());
  return norm.ok() ? *norm : -1;
}

double MaxDiff(const Named& a, const Named& b) {
  EXPECT_EQ(a.size(), b.size());
  double diff = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.sizes(), b[i].second.sizes()) << a[i].first;
    if (a[i].second.sizes() != b[i].second.sizes()) return 1e9;
    diff = std::max(diff, (a[i].second - b[i].second).abs().max().item<double>());
  }
  return diff;
}

Named Full(ShardedParameters& sharded) {
  auto full = sharded.FullParameters();
  EXPECT_TRUE(full.ok()) << full.status();
  return full.ok() ? *full : Named{};
}

struct Sharded {
  std::unique_ptr<Communicator> comm;
  torch::nn::Sequential model;
  std::unique_ptr<ShardedParameters> sharded;
};

// comm over `ranks`, the model sharded over it, an optimizer ready.
Sharded Start(const std::vector<int>& ranks, const std::string& name, FsdpOptions options) {
  Sharded run;
  auto comm = CreateMpiCommunicator(ranks, name, 60);
  EXPECT_TRUE(comm.ok()) << comm.status();
  if (!comm.ok()) return run;
  run.comm = std::move(*comm);
  run.model = MakeModel();
  auto sharded = ShardedParameters::Create(*run.model, run.comm.get(), options, true);
  EXPECT_TRUE(sharded.ok()) << sharded.status();
  if (!sharded.ok()) return run;
  run.sharded = std::move(*sharded);
  EXPECT_TRUE(run.sharded->InitOptimizer(Adam()).ok());
  return run;
}

TEST(ShardedParametersTest, TwoStepsMatchSingleProcessAdamW) {
  std::vector<double> ref_norms;
  const Named reference = Reference(2, &ref_norms);
  Sharded run = Start(AllRanks(), "trainer", kSmallBuckets);
  ASSERT_NE(run.sharded, nullptr);
  EXPECT_EQ(run.sharded->num_buckets(), 3);  // [0.weight] [0.bias 2.weight] [2.bias]
  EXPECT_EQ(run.sharded->total_elements(), 7 * 13 + 13 + 13 * 5 + 5);
  for (const auto& p : run.model->parameters()) EXPECT_EQ(p.numel(), 0);  // empty at rest
  for (int step = 1; step <= 2; ++step) {
    const double norm = ShardedStep(*run.sharded, run.model, *run.comm, step);
    EXPECT_NEAR(norm, ref_norms[step - 1], 1e-5 * ref_norms[step - 1]) << "step " << step;
    EXPECT_GT(norm, kMaxNorm);  // clipping took effect
  }
  const Named full = Full(*run.sharded);
  EXPECT_LT(MaxDiff(full, reference), kTolerance);
  // Gathered module parameters are the same tensors as FullParameters, bit for bit.
  ASSERT_TRUE(run.sharded->Gather().ok());
  EXPECT_EQ(MaxDiff(Params(run.model), full), 0);
  for (const auto& p : run.model->parameters()) EXPECT_TRUE(p.requires_grad());
  run.sharded->Release();
}

TEST(ShardedParametersTest, ResidentBytesFallAsOneOverW) {
  // W = 1 on every rank: a group of this rank alone.
  Sharded single = Start({WorldRank()}, "self", kSmallBuckets);
  Sharded sharded = Start(AllRanks(), "trainer", kSmallBuckets);
  ASSERT_NE(single.sharded, nullptr);
  ASSERT_NE(sharded.sharded, nullptr);
  for (int step = 1; step <= 2; ++step) {
    ShardedStep(*single.sharded, single.model, *single.comm, step);
    ShardedStep(*sharded.sharded, sharded.model, *sharded.comm, step);
  }
  const Named reference = Reference(2);
  EXPECT_LT(MaxDiff(Full(*single.sharded), reference), kTolerance);
  // At rest: params + exp_avg + exp_avg_sq, float32, no grads.
  const int64_t total = single.sharded->total_elements();
  EXPECT_EQ(single.sharded->resident_bytes(), 3 * 4 * total);
  const int w = sharded.comm->size();
  // Padding adds less than one element per bucket and tensor kind to a shard.
  const int64_t slack = 3 * 4 * sharded.sharded->num_buckets();
  EXPECT_LE(sharded.sharded->resident_bytes(), single.sharded->resident_bytes() / w + slack)
      << "W=" << w;
}

// Save after one step from W ranks, reload into fresh ShardedParameters (same placement,
// and one rank alone with other buckets), continue: the same as uninterrupted training.
TEST(ShardedParametersTest, OptimizerSlicesResumeOnAnyPlacement) {
  const Named reference = Reference(2);
  Sharded run = Start(AllRanks(), "trainer", kSmallBuckets);
  ASSERT_NE(run.sharded, nullptr);
  ShardedStep(*run.sharded, run.model, *run.comm, 1);
  auto saved = run.sharded->SaveOptimizerSlice();
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->step, 1);
  const Named weights = Full(*run.sharded);

  // Every rank learns every rank's slice (what reading all checkpoint files would give).
  const int w = run.comm->size();
  const int64_t total = run.sharded->total_elements();
  torch::Tensor bounds = torch::zeros({w, 2}, torch::kLong);
  bounds[run.comm->rank()][0] = saved->begin;
  bounds[run.comm->rank()][1] = saved->end;
  torch::Tensor m = torch::zeros({total}), v = torch::zeros({total});
  m.narrow(0, saved->begin, saved->end - saved->begin).copy_(saved->exp_avg);
  v.narrow(0, saved->begin, saved->end - saved->begin).copy_(saved->exp_avg_sq);
  ASSERT_TRUE(run.comm->AllReduceSum(bounds).ok());
  ASSERT_TRUE(run.comm->AllReduceSum(m).ok());
  ASSERT_TRUE(run.comm->AllReduceSum(v).ok());
  std::vector<Slice> slices;
  for (int r = 0; r < w; ++r) {
    const int64_t b = bounds[r][0].item<int64_t>(), e = bounds[r][1].item<int64_t>();
    slices.push_back(Slice{b, e, saved->step, m.narrow(0, b, e - b), v.narrow(0, b, e - b)});
  }
  EXPECT_EQ(slices.front().begin, 0);
  EXPECT_EQ(slices.back().end, total);

  auto resume = [&](const std::vector<int>& ranks, const std::string& name, FsdpOptions options) {
    Sharded next;
    next.model = MakeModel();
    {
      torch::NoGradGuard no_grad;
      auto params = next.model->parameters();
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(weights[i].second);
    }
    auto comm = CreateMpiCommunicator(ranks, name, 60);
    EXPECT_TRUE(comm.ok());
    next.comm = std::move(*comm);
    auto sharded = ShardedParameters::Create(*next.model, next.comm.get(), options, true);
    EXPECT_TRUE(sharded.ok()) << sharded.status();
    next.sharded = std::move(*sharded);
    EXPECT_TRUE(next.sharded->InitOptimizer(Adam()).ok());
    EXPECT_TRUE(next.sharded->LoadOptimizerSlices(slices).ok());
    ShardedStep(*next.sharded, next.model, *next.comm, 2);
    return Full(*next.sharded);
  };
  EXPECT_LT(MaxDiff(resume(AllRanks(), "trainer", kSmallBuckets), reference), kTolerance);
  EXPECT_LT(MaxDiff(resume({WorldRank()}, "self", FsdpOptions{}), reference), kTolerance);

  // An incomplete set of slices is refused.
  if (w > 1) {
    std::vector<Slice> missing(slices.begin() + 1, slices.end());
    Sharded other = Start({WorldRank()}, "self", FsdpOptions{});
    ASSERT_NE(other.sharded, nullptr);
    EXPECT_EQ(other.sharded->LoadOptimizerSlices(missing).code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(ShardedParametersTest, FrozenModuleGathersButHasNoGrads) {
  auto comm = CreateMpiCommunicator(AllRanks(), "reference", 60);
  ASSERT_TRUE(comm.ok());
  auto model = MakeModel();
  const Named initial = Params(model);
  auto frozen = ShardedParameters::Create(*model, comm->get(), kSmallBuckets, false);
  ASSERT_TRUE(frozen.ok()) << frozen.status();
  EXPECT_EQ((*frozen)->ReduceScatterGrads().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*frozen)->InitOptimizer(Adam()).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*frozen)->Gather().ok());
  EXPECT_EQ(MaxDiff(Params(model), initial), 0);
  const int64_t shard_bytes = (*frozen)->resident_bytes();
  EXPECT_LE(shard_bytes, 4 * (*frozen)->total_elements() / (*comm)->size() + 4 * 4);
  (*frozen)->Release();
}

}  // namespace
}  // namespace hone::dist
