#pragma once
// Conv+BN folding for inference: a copy of a model whose ConvBN units are folded (each
// conv takes its BatchNorm's eval-mode affine map into its weight and bias). The copy
// computes what the original computes in eval mode, within rounding: 1e-5 relative in
// float32, 1e-12 in float64 (tests/pde/test_fold_bn.cpp).
#include <memory>

#include "pde/pde_resnet.hpp"

namespace symgrad::pde {

// A new model (eval mode, folded config, same dtype) with the folded parameters.
// Throws if `model` is already folded.
std::shared_ptr<PDEResNet> fold_batch_norms(const PDEResNet& model);

}  // namespace symgrad::pde
