// LayerNorm as a composite of engine ops (see layernorm.hpp).
#include "nn/layers/layernorm.hpp"

#include <sstream>
#include <stdexcept>
#include <utility>

namespace symgrad::nn {
namespace {

std::string describe(const Shape& normalized_shape) {
  return "LayerNorm(" + shape_str(normalized_shape) + ")";
}

void check_input(const std::string& who, const Tensor& x, const Shape& normalized_shape) {
  if (!x.defined()) throw std::invalid_argument(who + ": the input is undefined");
  const std::size_t k = normalized_shape.size();
  const Shape& s = x.shape();
  bool ends_with = s.size() >= k;
  for (std::size_t i = 0; ends_with && i < k; ++i) ends_with = s[s.size() - k + i] == normalized_shape[i];
  if (!ends_with)
    throw std::invalid_argument(who + ": input " + shape_str(s) +
                                " does not end with the normalized shape " +
                                shape_str(normalized_shape));
}

void check_affine(const std::string& who, const char* name, const Tensor& t, const Tensor& x,
                  const Shape& normalized_shape) {
  if (!t.defined()) return;
  if (t.shape() != normalized_shape)
    throw std::invalid_argument(who + ": " + name + " " + shape_str(t.shape()) +
                                " must have the normalized shape " + shape_str(normalized_shape));
  if (t.dtype() != x.dtype())
    throw std::invalid_argument(who + ": input is " + dtype_name(x.dtype()) + " but " + name +
                                " is " + dtype_name(t.dtype()));
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  const std::string who = "layer_norm";
  if (normalized_shape.empty())
    throw std::invalid_argument(who + ": normalized_shape is empty; name at least one axis");
  check_input(who, x, normalized_shape);
  check_affine(who, "weight", weight, x, normalized_shape);
  check_affine(who, "bias", bias, x, normalized_shape);

  Axes axes;
  for (std::int64_t a = x.dim() - static_cast<std::int64_t>(normalized_shape.size()); a < x.dim(); ++a)
    axes.push_back(a);
  const Tensor centered = x - mean(x, axes, true);
  const Tensor variance = mean(square(centered), axes, true);  // biased, as in the paper
  Tensor y = centered * reciprocal(sqrt(variance + eps));
  // weight and bias have the trailing shape, so plain broadcasting lines them up.
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine, DType dtype)
    : normalized_shape_(std::move(normalized_shape)), eps_(eps) {
  if (normalized_shape_.empty())
    throw std::invalid_argument("LayerNorm: normalized_shape is empty; name at least one axis");
  for (std::int64_t d : normalized_shape_)
    if (d <= 0)
      throw std::invalid_argument(describe(normalized_shape_) +
                                  ": every normalized axis must have a positive size");
  if (!(eps > 0.0))
    throw std::invalid_argument(describe(normalized_shape_) + ": eps must be positive");
  if (elementwise_affine) {
    weight = register_parameter("weight", ones(normalized_shape_, dtype));
    bias = register_parameter("bias", zeros(normalized_shape_, dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  const std::string who = describe(normalized_shape_);
  // Checked here too so that the error names the layer rather than the function.
  check_input(who, x, normalized_shape_);
  check_affine(who, "weight", weight, x, normalized_shape_);
  return layer_norm(x, normalized_shape_, weight, bias, eps_);
}

std::string LayerNorm::extra_repr() const {
  std::ostringstream os;
  os << shape_str(normalized_shape_) << ", eps=" << eps_;
  if (!weight.defined()) os << ", no affine";
  return os.str();
}

}  // namespace symgrad::nn
