// Deterministic shuffling, the DataLoader and held-out splits.
#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "framework/core/status.h"
#include "framework/data/dataset.h"

namespace hone::data {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Keeps the held-out split's permutation apart from every epoch's.
constexpr uint64_t kSplitSalt = 0x68656C646F757421ull;

}  // namespace

uint64_t MixSeed(uint64_t seed, uint64_t salt) {
  return SplitMix64(SplitMix64(seed) ^ SplitMix64(salt ^ 0xA0761D6478BD642Full));
}

uint64_t UniformBelow(std::mt19937_64& rng, uint64_t n) {
  // Values below 2^64 mod n would make the low residues more likely; redraw them.
  const uint64_t threshold = (0 - n) % n;
  while (true) {
    uint64_t x = rng();
    if (x >= threshold) return x % n;
  }
}

std::vector<int64_t> ShuffledOrder(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(std::max<int64_t>(n, 0)));
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::mt19937_64 rng(MixSeed(seed, static_cast<uint64_t>(epoch)));
  for (size_t i = order.size(); i > 1; --i) {
    size_t j = static_cast<size_t>(UniformBelow(rng, i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

DataLoader::DataLoader(std::vector<Example> examples, uint64_t seed, bool shuffle)
    : examples_(std::move(examples)), seed_(seed), shuffle_(shuffle) {
  StartEpoch(0);
}

void DataLoader::StartEpoch(int64_t epoch) {
  epoch_ = epoch;
  position_ = 0;
  if (shuffle_) {
    order_ = ShuffledOrder(size(), seed_, epoch);
  } else if (static_cast<int64_t>(order_.size()) != size()) {
    order_.resize(examples_.size());
    for (size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<int64_t>(i);
  }
}

std::vector<Example> DataLoader::NextBatch(int64_t batch_size) {
  std::vector<Example> batch;
  if (batch_size <= 0 || examples_.empty()) return batch;
  batch.reserve(static_cast<size_t>(batch_size));
  while (static_cast<int64_t>(batch.size()) < batch_size) {
    batch.push_back(examples_[static_cast<size_t>(order_[static_cast<size_t>(position_)])]);
    if (++position_ == size()) StartEpoch(epoch_ + 1);
  }
  return batch;
}

absl::Status DataLoader::Restore(const LoaderState& state) {
  if (state.epoch < 0 || state.position < 0 || state.position > size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("data loader state (epoch ", state.epoch, ", position ", state.position,
                     ") does not fit a dataset of ", size(), " examples"));
  }
  StartEpoch(state.epoch);
  position_ = state.position;
  if (position_ == size() && size() > 0) StartEpoch(epoch_ + 1);
  return absl::OkStatus();
}

absl::StatusOr<Split> SplitHeldOut(std::vector<Example> examples, int64_t held_out,
                                   uint64_t seed) {
  const int64_t n = static_cast<int64_t>(examples.size());
  if (held_out < 0 || held_out > n) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot hold out ", held_out, " of ", n, " examples"));
  }
  std::vector<int64_t> order = ShuffledOrder(n, seed ^ kSplitSalt, 0);
  std::vector<bool> is_held(static_cast<size_t>(n), false);
  for (int64_t k = 0; k < held_out; ++k) is_held[static_cast<size_t>(order[static_cast<size_t>(k)])] = true;
  Split split;
  split.held_out.reserve(static_cast<size_t>(held_out));
  split.train.reserve(static_cast<size_t>(n - held_out));
  for (int64_t i = 0; i < n; ++i) {
    auto& part = is_held[static_cast<size_t>(i)] ? split.held_out : split.train;
    part.push_back(std::move(examples[static_cast<size_t>(i)]));
  }
  return split;
}

}  // namespace hone::data
