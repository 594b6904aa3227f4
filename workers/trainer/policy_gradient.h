// The gradient of one PPO/GRPO mini-batch, shared by the in-process trainer and the
// FSDP trainer ranks: forward/backward over micro-batches, with every loss term divided
// by the whole mini-batch's denominators (algo::LossDenominators), so that the gradient
// is that of the mini-batch whatever trainer.micro_batch_size is and however the rows
// are spread over trainer ranks (the caller sums the counts over ranks).
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "framework/algo/algo.h"
#include "framework/data/batch.h"
#include "framework/model/model.h"
#include "workers/trainer/local_trainer.h"

namespace hone {

// Sums over the micro-batches of one mini-batch. Loss terms are already divided by the
// mini-batch's denominators, so their sums are the mini-batch's values; the fractions
// are weighted by counted tokens (divide by `tokens`). The rollout correction's sums
// (algo::RolloutCorrectionOutput; 0 when algorithm.rollout_correction is off) are divided
// by is_units (weight mean, exceeded fraction) and sequences (seq KL). Every field is a
// plain sum, so the FSDP ranks all-reduce them field by field (kNumFields, ToArray).
struct MiniBatchSums {
  double policy_loss = 0, kl = 0, entropy = 0;
  double clip_tokens = 0, dual_clip_tokens = 0, approx_kl_tokens = 0, tokens = 0;
  double is_units = 0, is_weight_sum = 0, is_exceeded = 0, sequences = 0, seq_kl_sum = 0;

  static constexpr int kNumFields = 12;
  std::array<double, kNumFields> ToArray() const;
  static MiniBatchSums FromArray(const double* values);
};

// Rows [begin, end) of `batch` (which carries the columns Update needs) form a piece of a
// mini-batch whose counts are `whole`. Runs forward/backward in micro-batches of
// options.micro_batch_size rows (cut by PlanMicroBatches, sorted by length unless
// options.sort_micro_batches is off), accumulating into the parameters' .grad (call
// zero_grad first). Throws on libtorch errors (callers wrap it in CatchTorch).
MiniBatchSums AccumulatePolicyGradient(CausalLM& policy, const Batch& batch, int64_t begin, int64_t end,
                                       const TrainerOptions& options, const algo::LossDenominators& whole);

// One micro-batch: the batch rows it holds (int64 indices) and the width that covers the
// longest of them (every position beyond it is padding in all of its rows).
struct MicroBatch {
  torch::Tensor rows;
  int64_t width = 0;
};

// Cuts rows [begin, end) into micro-batches of at most `size` rows. With `sort_by_length`
// the rows are first ordered by real length (attention_mask's row sums; longest first, so
// a micro-batch that does not fit in memory fails at the first forward; ties keep batch
// order), so each micro-batch holds sequences of similar length and pays for less padding.
// The mini-batch's gradient does not depend on the order: every loss term is divided by
// the whole mini-batch's denominators.
std::vector<MicroBatch> PlanMicroBatches(const torch::Tensor& attention_mask, int64_t begin, int64_t end,
                                         int64_t size, bool sort_by_length);

// The positions a plan runs through the model (rows x width summed over its micro-batches)
// and how many of them are real tokens; the rest is padding.
struct PaddingCount {
  int64_t positions = 0, real = 0;
  int64_t padding() const { return positions - real; }
};
PaddingCount CountPadding(const torch::Tensor& attention_mask, const std::vector<MicroBatch>& plan);

// The micro-batch's rows of a tensor ([N] or [N,T]), trimmed to its width.
torch::Tensor Rows(const torch::Tensor& t, const MicroBatch& micro);
// Rows [start, start+rows) of a tensor, trimmed to the first `width` positions.
torch::Tensor Rows(const torch::Tensor& t, int64_t start, int64_t rows, int64_t width);
// Longest real sequence among the rows: positions beyond it are padding in every row.
int64_t UsedWidth(const torch::Tensor& attention_mask, int64_t start, int64_t rows);

// Counts of rows [begin, end) of `mask` [N,T].
algo::LossDenominators CountRows(const torch::Tensor& mask, int64_t begin, int64_t end);

}  // namespace hone
