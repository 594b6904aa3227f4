// FSDP-style flat-bucket sharding of a module's parameters, grads and AdamW state.
#include "framework/dist/fsdp.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/core/torch_status.h"

namespace hone::dist {
namespace {

torch::Tensor Empty(torch::ScalarType dtype) { return torch::empty({0}, torch::dtype(dtype)); }

// AdamW keys its per-parameter state by the parameter's TensorImpl address.
std::string StateKey(const torch::Tensor& t) {
  return c10::guts::to_string(t.unsafeGetTensorImpl());
}

}  // namespace

ShardedParameters::~ShardedParameters() = default;

int64_t ShardedParameters::shard_numel(const Bucket& b) const { return b.padded / comm_->size(); }

absl::StatusOr<std::unique_ptr<ShardedParameters>> ShardedParameters::Create(
    torch::nn::Module& module, Communicator* comm, FsdpOptions options, bool trainable) {
  if (comm == nullptr) return absl::InvalidArgumentError("ShardedParameters needs a communicator");
  std::unique_ptr<ShardedParameters> out(new ShardedParameters());
  out->comm_ = comm;
  out->trainable_ = trainable;
  const std::string where = absl::StrCat("sharding '", module.name(), "' over group '",
                                         comm->name(), "'");
  std::unordered_set<const void*> seen;
  bool first = true;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const torch::Tensor& p = item.value();
    if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;  // tied: shard once
    if (!p.device().is_cpu() || !torch::isFloatingType(p.scalar_type())) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": parameter '", item.key(),
                                                     "' must be a floating CPU tensor"));
    }
    if (first) out->dtype_ = p.scalar_type();
    first = false;
    if (p.scalar_type() != out->dtype_) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": parameter '", item.key(), "' is ",
                                                     c10::toString(p.scalar_type()),
                                                     ", the others ", c10::toString(out->dtype_)));
    }
    out->params_.push_back(Param{item.key(), p, p.sizes().vec(), p.numel(), 0});
  }
  // Consecutive parameters into buckets, each closed once it reaches bucket_bytes.
  const int64_t world = comm->size();
  const int64_t elem = torch::elementSize(out->dtype_);
  Bucket current;
  auto close = [&]() {
    current.begin = out->total_elements_;
    current.padded = (current.numel + world - 1) / world * world;
    out->total_elements_ += current.numel;
    out->buckets_.push_back(std::move(current));
    current = Bucket();
  };
  for (size_t i = 0; i < out->params_.size(); ++i) {
    out->params_[i].offset = current.numel;
    current.params.push_back(static_cast<int>(i));
    current.numel += out->params_[i].numel;
    if (current.numel * elem >= options.bucket_bytes) close();
  }
  if (!current.params.empty()) close();

  // Pack each bucket, take rank 0's copy, keep this rank's slice, empty the parameters.
  torch::NoGradGuard no_grad;
  for (Bucket& b : out->buckets_) {
    torch::Tensor flat = torch::zeros({b.padded}, torch::dtype(out->dtype_));
    HONE_RETURN_IF_ERROR(CatchTorch(where, [&] {
      for (int i : b.params) {
        const Param& p = out->params_[i];
        flat.narrow(0, p.offset, p.numel).copy_(p.tensor.reshape({-1}));
      }
    }));
    HONE_RETURN_IF_ERROR(Annotate(comm->Broadcast(flat, 0), where));
    const int64_t s = out->shard_numel(b);
    b.shard = flat.narrow(0, comm->rank() * s, s).clone();
    if (trainable) b.shard.set_requires_grad(true);
    for (int i : b.params) {
      out->params_[i].tensor.set_data(Empty(out->dtype_));
      out->params_[i].tensor.mutable_grad() = torch::Tensor();
    }
  }
  return out;
}

absl::StatusOr<torch::Tensor> ShardedParameters::GatherBucket(const Bucket& b,
                                                              const torch::Tensor& shard) {
  torch::Tensor full = torch::empty({b.padded}, torch::dtype(dtype_));
  HONE_RETURN_IF_ERROR(comm_->AllGather(shard.detach(), full));
  return full;
}

absl::Status ShardedParameters::Gather() {
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    HONE_ASSIGN_OR_RETURN(b.full, GatherBucket(b, b.shard));
    for (int i : b.params) {
      Param& p = params_[i];
      p.tensor.set_data(b.full.narrow(0, p.offset, p.numel).view(p.shape));
    }
  }
  return absl::OkStatus();
}

void ShardedParameters::Release() {
  torch::NoGradGuard no_grad;
  for (Param& p : params_) {
    p.tensor.set_data(Empty(dtype_));
    p.tensor.mutable_grad() = torch::Tensor();
  }
  for (Bucket& b : buckets_) b.full = torch::Tensor();
}

absl::Status ShardedParameters::CheckTrainable(const char* what) const {
  if (trainable_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(what, ": these parameters were sharded as frozen (trainable = false)"));
}

absl::Status ShardedParameters::ReduceScatterGrads() {
  HONE_RETURN_IF_ERROR(CheckTrainable("ReduceScatterGrads"));
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    torch::Tensor full_grad = torch::zeros({b.padded}, torch::dtype(dtype_));
    for (int i : b.params) {
      Param& p = params_[i];
      const torch::Tensor& g = p.tensor.grad();
      if (!g.defined()) continue;
      if (g.numel() != p.numel) {
        return absl::FailedPreconditionError(absl::StrCat(
            "ReduceScatterGrads: grad of '", p.name, "' has ", g.numel(), " elements, expected ",
            p.numel, " (call Gather() before forward/backward)"));
      }
      full_grad.narrow(0, p.offset, p.numel).copy_(g.reshape({-1}));
    }
    torch::Tensor shard_grad = torch::empty({shard_numel(b)}, torch::dtype(dtype_));
    HONE_RETURN_IF_ERROR(comm_->ReduceScatter(full_grad, shard_grad));
    for (int i : b.params) params_[i].tensor.mutable_grad() = torch::Tensor();
    torch::Tensor& acc = b.shard.mutable_grad();
    if (acc.defined()) {
      acc.add_(shard_grad);
    } else {
      acc = shard_grad;
    }
  }
  return absl::OkStatus();
}

void ShardedParameters::ZeroGrad() {
  for (Bucket& b : buckets_) b.shard.mutable_grad() = torch::Tensor();
}

absl::StatusOr<double> ShardedParameters::ClipGradNorm(double max_norm) {
  HONE_RETURN_IF_ERROR(CheckTrainable("ClipGradNorm"));
  torch::NoGradGuard no_grad;
  double local = 0;
  for (const Bucket& b : buckets_) {
    const torch::Tensor& g = b.shard.grad();
    if (g.defined()) local += g.to(torch::kDouble).square().sum().item<double>();
  }
  torch::Tensor sum = torch::full({1}, local, torch::dtype(torch::kDouble));
  HONE_RETURN_IF_ERROR(comm_->AllReduceSum(sum));
  const double norm = std::sqrt(sum.item<double>());
  if (max_norm > 0) {
    const double coef = max_norm / (norm + 1e-6);
    if (coef < 1) {
      for (Bucket& b : buckets_) {
        if (b.shard.grad().defined()) b.shard.mutable_grad().mul_(coef);
      }
    }
  }
  return norm;
}

absl::Status ShardedParameters::InitOptimizer(const torch::optim::AdamWOptions& options) {
  HONE_RETURN_IF_ERROR(CheckTrainable("InitOptimizer"));
  if (options.amsgrad()) return absl::UnimplementedError("sharded AdamW does not support amsgrad");
  std::vector<torch::Tensor> shards;
  for (const Bucket& b : buckets_) shards.push_back(b.shard);
  return CatchTorch("InitOptimizer", [&] {
    optimizer_ = std::make_unique<torch::optim::AdamW>(shards, options);
  });
}

absl::Status ShardedParameters::OptimizerStep(double lr) {
  if (optimizer_ == nullptr) return absl::FailedPreconditionError("OptimizerStep before InitOptimizer");
  HONE_RETURN_IF_ERROR(CatchTorch("OptimizerStep", [&] {
    for (auto& group : optimizer_->param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    }
    optimizer_->step();
  }));
  ZeroGrad();
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, torch::Tensor>>>
ShardedParameters::FullParameters() {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const Bucket& b : buckets_) {
    HONE_ASSIGN_OR_RETURN(torch::Tensor full, GatherBucket(b, b.shard));
    for (int i : b.params) {
      const Param& p = params_[i];
      out.emplace_back(p.name, full.narrow(0, p.offset, p.numel).view(p.shape));
    }
  }
  return out;
}

absl::StatusOr<ShardedParameters::OptimizerSlice> ShardedParameters::SaveOptimizerSlice() {
  if (optimizer_ == nullptr) {
    return absl::FailedPreconditionError("SaveOptimizerSlice before InitOptimizer");
  }
  torch::NoGradGuard no_grad;
  const int64_t world = comm_->size(), rank = comm_->rank();
  OptimizerSlice slice;
  slice.begin = rank * total_elements_ / world;
  slice.end = (rank + 1) * total_elements_ / world;
  slice.exp_avg = torch::zeros({slice.end - slice.begin}, torch::dtype(dtype_));
  slice.exp_avg_sq = torch::zeros({slice.end - slice.begin}, torch::dtype(dtype_));
  bool have_step = false;
  for (const Bucket& b : buckets_) {
    const auto it = optimizer_->state().find(StateKey(b.shard));
    const auto* state = it == optimizer_->state().end()
                            ? nullptr
                            : static_cast<const torch::optim::AdamWParamState*>(it->second.get());
    const int64_t step = state ? state->step() : 0;
    if (have_step && step != slice.step) {
      return absl::InternalError(absl::StrCat("SaveOptimizerSlice: buckets disagree on the step (",
                                              step, " vs ", slice.step, ")"));
    }
    slice.step = step;
    have_step = true;
    const torch::Tensor zeros = torch::zeros({shard_numel(b)}, torch::dtype(dtype_));
    HONE_ASSIGN_OR_RETURN(torch::Tensor m, GatherBucket(b, state ? state->exp_avg() : zeros));
    HONE_ASSIGN_OR_RETURN(torch::Tensor v, GatherBucket(b, state ? state->exp_avg_sq() : zeros));
    const int64_t lo = std::max(slice.begin, b.begin);
    const int64_t hi = std::min(slice.end, b.begin + b.numel);
    if (lo >= hi) continue;
    slice.exp_avg.narrow(0, lo - slice.begin, hi - lo).copy_(m.narrow(0, lo - b.begin, hi - lo));
    slice.exp_avg_sq.narrow(0, lo - slice.begin, hi - lo).copy_(v.narrow(0, lo - b.begin, hi - lo));
  }
  return slice;
}

absl::Status ShardedParameters::LoadOptimizerSlices(const std::vector<OptimizerSlice>& slices) {
  if (optimizer_ == nullptr) {
    return absl::FailedPreconditionError("LoadOptimizerSlices before InitOptimizer");
  }
  return CatchTorch("LoadOptimizerSlices", [&] { return LoadSlicesInto(slices); });
}

absl::Status ShardedParameters::LoadSlicesInto(const std::vector<OptimizerSlice>& slices) {
  torch::NoGradGuard no_grad;
  int64_t step = slices.empty() ? 0 : slices[0].step;
  for (const OptimizerSlice& s : slices) {
    if (s.begin < 0 || s.begin > s.end || s.end > total_elements_ || !s.exp_avg.defined() ||
        !s.exp_avg_sq.defined() || s.exp_avg.numel() != s.end - s.begin ||
        s.exp_avg_sq.numel() != s.end - s.begin) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer slice [", s.begin, ", ", s.end, ") is malformed or outside the model's ",
          total_elements_, " elements"));
    }
    if (s.step != step) {
      return absl::InvalidArgumentError(
          absl::StrCat("optimizer slices disagree on the step (", s.step, " vs ", step, ")"));
    }
  }
  const int64_t rank = comm_->rank();
  std::vector<std::pair<torch::Tensor, torch::Tensor>> moments;
  for (const Bucket& b : buckets_) {
    const int64_t n = shard_numel(b);
    // This shard's unpadded part in global element coordinates.
    const int64_t lo_b = b.begin + std::min(rank * n, b.numel);
    const int64_t hi_b = b.begin + std::min((rank + 1) * n, b.numel);
    torch::Tensor m = torch::zeros({n}, torch::dtype(dtype_));
    torch::Tensor v = torch::zeros({n}, torch::dtype(dtype_));
    torch::Tensor covered = torch::zeros({n}, torch::kUInt8);
    for (const OptimizerSlice& s : slices) {
      const int64_t lo = std::max(lo_b, s.begin), hi = std::min(hi_b, s.end);
      if (lo >= hi) continue;
      m.narrow(0, lo - lo_b, hi - lo).copy_(s.exp_avg.reshape({-1}).narrow(0, lo - s.begin, hi - lo));
      v.narrow(0, lo - lo_b, hi - lo)
          .copy_(s.exp_avg_sq.reshape({-1}).narrow(0, lo - s.begin, hi - lo));
      covered.narrow(0, lo - lo_b, hi - lo).fill_(1);
    }
    if (hi_b > lo_b && covered.narrow(0, 0, hi_b - lo_b).min().item<int>() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "optimizer slices do not cover every element of [", lo_b, ", ", hi_b, ")"));
    }
    moments.emplace_back(m, v);
  }
  auto& state = optimizer_->state();
  for (size_t i = 0; i < buckets_.size(); ++i) {
    state.erase(StateKey(buckets_[i].shard));
    if (step == 0) continue;  // torch starts from zero moments on the first step anyway
    auto st = std::make_unique<torch::optim::AdamWParamState>();
    st->step(step);
    st->exp_avg(moments[i].first);
    st->exp_avg_sq(moments[i].second);
    state[StateKey(buckets_[i].shard)] = std::move(st);
  }
  return absl::OkStatus();
}

int64_t ShardedParameters::resident_bytes() const {
  int64_t bytes = 0;
  for (const Bucket& b : buckets_) {
    bytes += b.shard.nbytes();
    if (b.shard.grad().defined()) bytes += b.shard.grad().nbytes();
    if (optimizer_ == nullptr) continue;
    const auto it = optimizer_->state().find(StateKey(b.shard));
    if (it == optimizer_->state().end()) continue;
    const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    for (const torch::Tensor& t : {st.exp_avg(), st.exp_avg_sq(), st.max_exp_avg_sq()}) {
      if (t.defined()) bytes += t.nbytes();
    }
  }
  return bytes;
}

int64_t ShardedParameters::total_elements() const { return total_elements_; }

}  // namespace hone::dist
