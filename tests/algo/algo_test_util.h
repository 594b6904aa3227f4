// Small helpers shared by the framework/algo test files.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace hone::algo {

inline torch::Tensor F64(const std::vector<double>& v) {
  return torch::tensor(v, torch::dtype(torch::kFloat64));
}
inline torch::Tensor I64(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::dtype(torch::kLong));
}
inline std::vector<double> ToVector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat64).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
inline void ExpectNear(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "at " << i;
}

// Central differences of `loss_at` at every element of `x0` (float64), step h: the
// independent reference the autograd gradients of the losses are checked against.
template <typename LossAt>
std::vector<double> NumericGradient(const torch::Tensor& x0, LossAt loss_at, double h = 1e-6) {
  std::vector<double> numeric(x0.numel());
  for (int64_t i = 0; i < x0.numel(); ++i) {
    torch::Tensor plus = x0.clone(), minus = x0.clone();
    plus.view({-1})[i] += h;
    minus.view({-1})[i] -= h;
    numeric[i] = (loss_at(plus) - loss_at(minus)) / (2 * h);
  }
  return numeric;
}

}  // namespace hone::algo
