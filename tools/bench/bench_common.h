// Pieces every C++ benchmark in tools/bench uses the same way.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>

namespace hone::bench {

inline double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Best of `repeats` 2048^3 fp32 products in this process at its thread count: the peak a
// benchmark's matrix products could reach, measured in the same run as what it compares.
inline double MeasurePeakGflops(int repeats) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({2048, 2048});
  auto b = torch::randn({2048, 2048});
  auto c = torch::mm(a, b);
  double best = 0;
  for (int i = 0; i < repeats; ++i) {
    auto start = std::chrono::steady_clock::now();
    c = torch::mm(a, b);
    best = std::max(best, 2.0 * 2048 * 2048 * 2048 / Seconds(start) / 1e9);
  }
  return best;
}

}  // namespace hone::bench
