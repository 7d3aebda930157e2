// Loss functions as compositions of engine ops (see loss.hpp).
#include "nn/loss.hpp"

#include <stdexcept>
#include <string>

namespace symgrad::nn {
namespace {

Tensor reduce(const Tensor& per_element, Reduction r) {
  switch (r) {
    case Reduction::mean: return mean(per_element);
    case Reduction::sum: return sum(per_element);
    case Reduction::none: return per_element;
  }
  throw std::invalid_argument("loss: unknown Reduction value");
}

void check_pair(const char* loss, const Tensor& pred, const Tensor& target) {
  if (!pred.defined() || !target.defined())
    throw std::invalid_argument(std::string(loss) + ": " + (pred.defined() ? "target" : "pred") +
                                " is undefined");
  if (pred.shape() != target.shape())
    throw std::invalid_argument(std::string(loss) + ": pred " + shape_str(pred.shape()) +
                                " and target " + shape_str(target.shape()) +
                                " must have the same shape");
  if (pred.dtype() != target.dtype())
    throw std::invalid_argument(std::string(loss) + ": pred is " + dtype_name(pred.dtype()) +
                                " but target is " + dtype_name(target.dtype()));
  if (pred.numel() == 0)
    throw std::invalid_argument(std::string(loss) + ": pred " + shape_str(pred.shape()) + " is empty");
}

// Checks [N, C] scores against N labels in [0, C) and returns the labels as an [N, 1]
// index tensor for gather (indices are whole numbers stored in the scores' dtype).
Tensor label_index(const char* loss, const char* what, const Tensor& scores,
                   const std::vector<std::int64_t>& labels) {
  if (!scores.defined()) throw std::invalid_argument(std::string(loss) + ": " + what + " is undefined");
  if (scores.dim() != 2)
    throw std::invalid_argument(std::string(loss) + ": " + what + " " + shape_str(scores.shape()) +
                                " must be 2-D [N, C]");
  const std::int64_t n = scores.size(0), classes = scores.size(1);
  if (static_cast<std::int64_t>(labels.size()) != n)
    throw std::invalid_argument(std::string(loss) + ": " + std::to_string(labels.size()) +
                                " labels for " + what + " " + shape_str(scores.shape()) +
                                " (expected one per row, " + std::to_string(n) + ")");
  if (n == 0) throw std::invalid_argument(std::string(loss) + ": the batch is empty");
  std::vector<double> index(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= classes)
      throw std::invalid_argument(std::string(loss) + ": label " + std::to_string(labels[i]) +
                                  " at position " + std::to_string(i) + " is out of range [0, " +
                                  std::to_string(classes) + ") for " + what + " " +
                                  shape_str(scores.shape()));
    index[i] = static_cast<double>(labels[i]);
  }
  return from_vector(index, {n, 1}, scores.dtype());
}

// -log_probs[n, labels[n]] for each row, shape [N].
Tensor picked_negative_log_likelihood(const Tensor& log_probs, const Tensor& index) {
  return -reshape(gather(log_probs, 1, index), {log_probs.size(0)});
}

}  // namespace

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
    case Reduction::none: return "none";
  }
  return "unknown";
}

Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction r) {
  check_pair("mse_loss", pred, target);
  return reduce(square(pred - target), r);
}

Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction r) {
  check_pair("l1_loss", pred, target);
  return reduce(abs(pred - target), r);
}

Tensor huber_loss(const Tensor& pred, const Tensor& target, double delta, Reduction r) {
  check_pair("huber_loss", pred, target);
  if (!(delta > 0.0))
    throw std::invalid_argument("huber_loss: delta must be positive, got " + std::to_string(delta));
  const Tensor diff = pred - target;
  const Tensor size = abs(diff);
  // The two branches meet with equal value and slope at |d| = delta; `where` passes the
  // gradient to the branch it picked, so each element gets exactly one branch's derivative.
  const Tensor quadratic = 0.5 * square(diff);
  const Tensor linear = delta * (size - 0.5 * delta);
  return reduce(where(lt(size, full_like(size, delta)), quadratic, linear), r);
}

Tensor nll_loss(const Tensor& log_probs, const std::vector<std::int64_t>& labels, Reduction r) {
  const Tensor index = label_index("nll_loss", "log_probs", log_probs, labels);
  return reduce(picked_negative_log_likelihood(log_probs, index), r);
}

Tensor cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& labels,
                     CrossEntropyOptions opts) {
  const Tensor index = label_index("cross_entropy", "logits", logits, labels);
  const double eps = opts.label_smoothing;
  if (!(eps >= 0.0 && eps <= 1.0))
    throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " +
                                std::to_string(eps));
  const Tensor log_probs = log_softmax(logits, 1);
  Tensor per_example = picked_negative_log_likelihood(log_probs, index);
  if (eps > 0.0) {
    const Tensor uniform_target_loss = -mean(log_probs, {1});
    per_example = (1.0 - eps) * per_example + eps * uniform_target_loss;
  }
  return reduce(per_example, opts.reduction);
}

}  // namespace symgrad::nn
