#pragma once
// The weight symmetries symgrad knows how to find in a model built from its layers.
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.hpp"
#include "symmetry/weight_symmetry.hpp"

namespace symgrad::symmetry {

// The residual streams of a model that describes them as data (PDEResNet's
// stream_structure().to_json(), reached through nn::Module::weight_structure()):
// producers' axes by g, consumers' by g^-T; the algebra is gl(n) when both ends are
// linear, so(n) when a hardball stands at an end, diagonal(n) behind a ReLU; mode eval,
// with a note per unfolded BatchNorm in the way.
std::vector<WeightSymmetry> residual_stream_symmetries(const nlohmann::json& structure);

// Everything symmetries_of finds, in module order:
//  - residual streams (from weight_structure()); a stream with a ReLU at one end and a
//    hardball at the other admits only the identity and is left out;
//  - linear pairs: a Linear or groups-1 Conv2d followed, inside one Sequential, by another
//    with only shape-preserving linear layers (Flatten, Dropout) between: gl(n) (a change
//    of channel basis commutes with any kernel, stride and padding);
//  - ReLU rescaling: Linear/Conv2d (or an affine BatchNorm), ReLU, Linear/Conv2d:
//    diagonal(n);
//  - BatchNorm scale: the weight (and bias) of the Linear/Conv2d feeding a BatchNorm,
//    per channel: diagonal(n), mode train (exact for eps = 0; the note gives eps);
//  - softmax translation of the last Linear's bias, when the model is a Sequential that
//    ends in a Linear with bias: the translation algebra.
// Pairs across the boundary of a nested Sequential are not looked for.
std::vector<WeightSymmetry> symmetries_of(const nn::Module& model);

}  // namespace symgrad::symmetry
