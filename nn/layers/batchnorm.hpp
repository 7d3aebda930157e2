#pragma once
// Batch normalisation (Ioffe and Szegedy 2015). In training mode each channel of a
// batch is normalised with that batch's own mean and (biased) variance, then scaled and
// shifted by a learned weight and bias; running averages of the statistics are kept
// for eval mode, which normalises with them instead (so one example's output no longer
// depends on the rest of its batch).
//
// Channels are axis 1: BatchNorm1d takes [N, C] or [N, C, L], BatchNorm2d [N, C, H, W].
#include <cstdint>
#include <string>

#include "nn/module.hpp"

namespace symgrad::nn {

struct BatchNormOptions {
  double eps = 1e-5;       // added to the variance before the square root
  double momentum = 0.1;   // running = (1 - momentum) * running + momentum * batch
  bool affine = true;      // learn a per-channel weight and bias
  bool track_running_stats = true;  // off: no buffers, batch statistics in eval mode too
  DType dtype = DType::f32;
};

// How batch_norm_batch_stats computes. Both give the same values and derivatives of
// every order; `composite` is the specification that `fused` is tested against.
enum class BatchNormKernel {
  fused,      // one recorded node: statistics and output in few passes over memory
  composite,  // a chain of engine ops (mean, var, sub, mul, ...)
};

// What normalising with batch statistics produces: the output, and the per-channel
// mean and biased variance of the batch ([C], no history) for the running averages.
struct BatchNormResult {
  Tensor out;
  Tensor mean;
  Tensor var;
};

// Training-mode normalisation of x [N, C, ...] with its own statistics over every axis
// but 1. weight and bias ([C]) may be undefined (no affine transform). Needs more than
// one value per channel.
BatchNormResult batch_norm_batch_stats(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       double eps,
                                       BatchNormKernel kernel = BatchNormKernel::fused);
// Eval-mode normalisation of x [N, C, ...] with given per-channel statistics ([C],
// treated as constants). weight and bias may be undefined.
Tensor batch_norm_running_stats(const Tensor& x, const Tensor& running_mean,
                                const Tensor& running_var, const Tensor& weight,
                                const Tensor& bias, double eps);

// The layer; BatchNorm1d and BatchNorm2d differ only in the input ranks they accept.
class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return type_; }
  std::string extra_repr() const override;

  std::int64_t num_features() const { return features_; }
  const BatchNormOptions& options() const { return opts_; }

  Tensor weight;        // [C], ones at first; undefined without affine
  Tensor bias;          // [C], zeros at first; undefined without affine
  Tensor running_mean;  // buffer [C], zeros at first; undefined without track_running_stats
  Tensor running_var;   // buffer [C], ones at first (unbiased batch variances are averaged)

 protected:
  BatchNorm(std::string type, std::int64_t features, BatchNormOptions opts);
  // Throws, naming the layer, unless x has a rank this layer accepts.
  virtual void check_rank(const Tensor& x) const = 0;
  std::string describe() const;  // "BatchNorm2d(32)", for error messages

 private:
  void update_running_stats(const BatchNormResult& batch, std::int64_t values_per_channel);

  std::string type_;
  std::int64_t features_;
  BatchNormOptions opts_;
};

class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(std::int64_t features, BatchNormOptions opts = {});

 protected:
  void check_rank(const Tensor& x) const override;
};

class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(std::int64_t channels, BatchNormOptions opts = {});

 protected:
  void check_rank(const Tensor& x) const override;
};

}  // namespace symgrad::nn
