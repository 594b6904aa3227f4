// The unbiased Pass@k estimator of Chen et al. 2021 (Codex).
#include <cstdint>
#include <limits>

#include "framework/algo/algo.h"

namespace hone::algo {

double PassAtK(int64_t n, int64_t c, int64_t k) {
  if (k < 1 || k > n || c < 0 || c > n) return std::numeric_limits<double>::quiet_NaN();
  if (n - c < k) return 1.0;  // every k-subset holds a correct sample
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1..n} (1 - k / i)
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) {
    fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  }
  return 1.0 - fail;
}

}  // namespace hone::algo
