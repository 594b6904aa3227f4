#include "workers/trainer/token_logprobs.h"

#include <algorithm>
#include <limits>
#include <optional>

namespace hone {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr int64_t kChunkLogits = int64_t{1} << 25;  // 128 MiB of float32 logits per chunk

// Half-precision logits are reduced in float32, as the model's Forward upcasts them.
torch::Tensor Upcast(const torch::Tensor& x) {
  const auto type = x.scalar_type();
  return (type == torch::kHalf || type == torch::kBFloat16) ? x.to(torch::kFloat32) : x;
}

// log softmax(h @ w^T / temperature) over one chunk: [rows, vocab]. At temperature 1
// the logits are used as they are; otherwise they are scaled in place (no second copy).
torch::Tensor ChunkLogSoftmax(const torch::Tensor& h, const torch::Tensor& w, double temperature) {
  torch::Tensor z = Upcast(torch::matmul(h, w.t()));
  if (temperature != 1.0) z.div_(temperature);
  return torch::log_softmax(z, -1);
}

// The targets of one chunk, as gather indices and the mask of those in [0, limit).
std::pair<torch::Tensor, torch::Tensor> ChunkTargets(const torch::Tensor& targets, int64_t limit) {
  torch::Tensor in_range = (targets >= 0).logical_and_(targets < limit);
  return {targets.clamp(0, limit - 1).unsqueeze(1), in_range};
}

class ChunkedLogSoftmaxFunction : public torch::autograd::Function<ChunkedLogSoftmaxFunction> {
 public:
  // Returns {logprobs [N], entropy [N]}.
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& hidden, const torch::Tensor& weight,
                               const torch::Tensor& targets, double temperature, int64_t limit, int64_t chunk,
                               bool entropy_grad) {
    const int64_t N = hidden.size(0);
    const torch::Tensor w = weight.narrow(0, 0, limit);
    const auto out_type = Upcast(torch::empty({0}, hidden.options())).scalar_type();
    torch::Tensor logprobs = torch::empty({N}, hidden.options().dtype(out_type));
    torch::Tensor entropy = torch::empty({N}, hidden.options().dtype(out_type));
    // With a single chunk its log-softmax is kept for backward instead of recomputed: the
    // peak stays one chunk of logits (this one, freed when backward starts), and backward
    // saves the chunk's matrix product (2 x positions x C x V FLOPs, about a seventh of
    // the head's training FLOPs).
    const bool keep = N <= chunk && (hidden.requires_grad() || weight.requires_grad());
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t rows = std::min(chunk, N - start);
      torch::Tensor logp = ChunkLogSoftmax(hidden.narrow(0, start, rows), w, temperature);
      if (keep) ctx->saved_data["logp"] = logp;
      auto [index, in_range] = ChunkTargets(targets.narrow(0, start, rows), limit);
      logprobs.narrow(0, start, rows)
          .copy_(logp.gather(1, index).squeeze(1).masked_fill(in_range.logical_not(),
                                                              -std::numeric_limits<double>::infinity()));
      // -sum(p log p): every term >= 0, as algo::EntropyFromLogits computes it.
      torch::Tensor p_logp = logp.exp().mul_(logp);
      entropy.narrow(0, start, rows).copy_(p_logp.sum(-1).neg_());
    }
    ctx->save_for_backward({hidden, weight, targets, entropy});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["limit"] = limit;
    ctx->saved_data["chunk"] = chunk;
    ctx->set_materialize_grads(false);
    if (!entropy_grad) ctx->mark_non_differentiable({entropy});
    return {logprobs, entropy};
  }

  // With z the scaled logits of a row, p = softmax(z), H = -sum p log p:
  //   d logp[y] / dz = onehot(y) - p,   dH / dz = -p * (log p + H),
  // and d/dlogits = d/dz / temperature; then logits = h @ w^T gives the two matmuls.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& targets = saved[2];
    const torch::Tensor& entropy = saved[3];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const int64_t limit = ctx->saved_data["limit"].toInt();
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const torch::Tensor& grad_logp = grads[0];
    const torch::Tensor& grad_entropy = grads[1];
    const bool need_hidden = ctx->needs_input_grad(0), need_weight = ctx->needs_input_grad(1);
    variable_list out(7);
    if ((!grad_logp.defined() && !grad_entropy.defined()) || (!need_hidden && !need_weight)) return out;

    const int64_t N = hidden.size(0);
    const torch::Tensor w = weight.narrow(0, 0, limit);
    torch::Tensor grad_hidden = need_hidden ? torch::zeros_like(hidden) : torch::Tensor();
    torch::Tensor grad_weight = need_weight ? torch::zeros_like(weight) : torch::Tensor();
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t rows = std::min(chunk, N - start);
      const torch::Tensor h = hidden.narrow(0, start, rows);
      // The kept chunk may be needed again (a second backward with retain_graph): read only.
      const bool kept = ctx->saved_data.count("logp") > 0;
      torch::Tensor logp = kept ? ctx->saved_data["logp"].toTensor() : ChunkLogSoftmax(h, w, temperature);
      torch::Tensor p = logp.exp();
      torch::Tensor grad_z;  // [rows, limit], in the logits' dtype
      if (grad_entropy.defined()) {
        // -g_H * p * (log p + H), built in logp's buffer unless it is the kept one.
        torch::Tensor shifted = kept ? logp.clone() : logp;
        grad_z = shifted.add_(entropy.narrow(0, start, rows).unsqueeze(1))
                     .mul_(p)
                     .mul_(grad_entropy.narrow(0, start, rows).neg().unsqueeze(1));
      }
      if (grad_logp.defined()) {
        auto [index, in_range] = ChunkTargets(targets.narrow(0, start, rows), limit);
        // A target outside the vocabulary scored a constant -inf: no gradient.
        torch::Tensor g = grad_logp.narrow(0, start, rows).masked_fill(in_range.logical_not(), 0);
        torch::Tensor term = p.mul_(g.neg().unsqueeze(1));  // -g * p
        term.scatter_add_(1, index, g.unsqueeze(1).to(term.scalar_type()));
        grad_z = grad_z.defined() ? grad_z.add_(term) : term;
      }
      if (temperature != 1.0) grad_z.div_(temperature);
      grad_z = grad_z.to(weight.scalar_type());
      if (need_hidden) grad_hidden.narrow(0, start, rows).copy_(torch::matmul(grad_z, w));
      if (need_weight) grad_weight.narrow(0, 0, limit).addmm_(grad_z.t(), h);
    }
    out[0] = grad_hidden;
    out[1] = grad_weight;
    return out;
  }
};

}  // namespace

int64_t DefaultChunkPositions(int64_t vocab) { return std::max<int64_t>(1, kChunkLogits / std::max<int64_t>(1, vocab)); }

ChunkedLogProbs ChunkedTokenLogProbs(const torch::Tensor& hidden, const torch::Tensor& weight,
                                     const torch::Tensor& targets, double temperature, int64_t vocab_limit,
                                     int64_t chunk_positions, bool entropy_grad) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
              "ChunkedTokenLogProbs: hidden [N,C] and weight [V,C] disagree: ", hidden.sizes(), " vs ",
              weight.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0) && targets.scalar_type() == torch::kLong,
              "ChunkedTokenLogProbs: targets must be int64 [N] with N = ", hidden.size(0), ", got ", targets.sizes());
  TORCH_CHECK(temperature > 0.0, "ChunkedTokenLogProbs: temperature must be > 0, got ", temperature);
  const int64_t V = weight.size(0);
  const int64_t limit = vocab_limit > 0 && vocab_limit < V ? vocab_limit : V;
  const int64_t chunk = chunk_positions > 0 ? chunk_positions : DefaultChunkPositions(limit);
  variable_list out = ChunkedLogSoftmaxFunction::apply(hidden, weight, targets, temperature, limit, chunk,
                                                       entropy_grad);
  return {out[0], out[1]};
}

TokenLogProbs ComputeTokenLogProbs(CausalLM& model, const torch::Tensor& input_ids,
                                   const torch::Tensor& attention_mask, double temperature, bool with_grad,
                                   bool entropy_grad, const torch::Tensor& score_mask) {
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  std::optional<torch::NoGradGuard> no_grad;
  if (!with_grad) no_grad.emplace();
  const double temp = temperature > 0 ? temperature : 1.0;
  const auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(input_ids.device());
  auto positions = torch::arange(T, long_options).unsqueeze(0).expand({B, T});
  auto valid = attention_mask.to(torch::kBool);
  torch::Tensor hidden = model->FinalHidden(input_ids, positions, valid);  // [B,T,C]
  const int64_t C = hidden.size(2);

  // Row t of the hidden states predicts token t+1: flat index b*T + t scores b*T + t + 1.
  torch::Tensor scored = score_mask.defined() ? (score_mask != 0).logical_and(valid) : valid;
  torch::Tensor predicts = torch::zeros({B, T}, scored.options());
  torch::Tensor next_token = torch::zeros({B, T}, long_options);
  if (T > 1) {
    predicts.narrow(1, 0, T - 1).copy_(scored.narrow(1, 1, T - 1));
    next_token.narrow(1, 0, T - 1).copy_(input_ids.narrow(1, 1, T - 1));
  }
  torch::Tensor rows = predicts.reshape({-1}).nonzero().squeeze(1);  // [N]
  ChunkedLogProbs head = ChunkedTokenLogProbs(hidden.reshape({B * T, C}).index_select(0, rows), model->OutputWeight(),
                                              next_token.reshape({-1}).index_select(0, rows), temp,
                                              model->config().UsableVocabSize(), 0, entropy_grad);
  auto zeros = torch::zeros({B * T}, head.logprobs.options());
  torch::Tensor target_rows = rows + 1;
  return {zeros.index_copy(0, target_rows, head.logprobs).view({B, T}),
          zeros.index_copy(0, target_rows, head.entropy).view({B, T})};
}

}  // namespace hone
