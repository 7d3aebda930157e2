#pragma once
// Symmetry discovery by numerical null space (background.md §3): which elements xi of a
// candidate Lie algebra (gl(n) unless told) leave a model's function unchanged when
// exp(t xi) acts on n channels inside it?
//
// An *interface* is n channels that some parameters write (producers: the channels are
// their `axis`, e.g. a Linear's weight axis 0 and its bias) and others read (consumers:
// e.g. the next Linear's weight axis 1). exp(t xi) multiplies the producers' axes by g
// and the consumers' by g^-T, so the channels become g h and the consumers see
// W g^-1 g h = W h: the function can change only through what stands between (a ReLU,
// a hardball, a depthwise conv's grouping, ...).
//
// The map xi -> d/dt f(exp(t xi) . theta, X) at t = 0 is linear. One row of it is
// r(df) for a linear functional r of the outputs (here: a random unit-norm combination
// of all of f(X)). With G_P = dr/dP from one backward pass and P_a the parameter
// unfolded with its axis first ([n, rest]), the tangent is xi P_a for producers and
// -xi^T C_a for consumers, so
//   d/dt r = sum_prod <G_a, xi P_a> - sum_cons <G_a, xi^T C_a> = <xi, M>_F,
//   M = sum_prod G_a P_a^T - sum_cons C_a G_a^T,
// and the row's entry for the basis element e_k of the candidate is <e_k, M>_F.
// The rows' numerical null space (SVD, LAPACK dgesdd) is the symmetry algebra.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "nn/module.hpp"
#include "symmetry/lie_algebra.hpp"

namespace symgrad::symmetry {

// One axis of one parameter (a name from named_parameters()) that indexes the channels.
struct ParameterAxis {
  std::string parameter;
  std::int64_t axis = 0;
};

struct Interface {
  std::string name;          // "stream stage2", "1 -> 3 (ReLU)", ...
  std::int64_t channels = 0;  // n
  std::vector<ParameterAxis> producers;  // acted on by g
  std::vector<ParameterAxis> consumers;  // acted on by g^-T
  // What stands between producers and consumers, for people: "linear", "relu", ...
  std::string between;

  nlohmann::json to_json() const;
};

// Interfaces a model exposes:
//  - everything in its weight_structure(): "streams" (residual streams, PDEResNet's
//    StreamStructure::to_json()) and "interfaces" (block-internal ones, same fields);
//  - in every Sequential (the model itself included): each Linear or Conv2d (groups 1)
//    followed by the next one with only parameter-free modules between (ReLU, Flatten,
//    Hardball, ...), whose names make `between`.
std::vector<Interface> candidate_interfaces(const nn::Module& model);

struct DiscoveryOptions {
  std::int64_t rows = 0;  // 0: 2 * the candidate's dimension
  // A singular value s counts as zero when s <= tolerance * row_scale (below); 0 picks
  // 1e-9 in float64 and 1e-4 in float32.
  double tolerance = 0;
  // A null direction's weight-space tangent counts as zero when its singular value is
  // at most tangent_tolerance * sqrt(sum_a ||P_a||^2); 0: as `tolerance`.
  double tangent_tolerance = 0;
  std::uint64_t seed = 0;  // of the random row functionals
  // Called after every 16th row and after the last one with (rows done, rows in all):
  // thousands of backward passes take minutes, and a person wants to see them go.
  std::function<void(std::int64_t done, std::int64_t total)> progress = nullptr;
};

struct DiscoveryResult {
  Interface interface;
  std::string candidate;  // the candidate algebra's name
  std::int64_t candidate_dim = 0;
  std::int64_t rows = 0;
  std::int64_t rank = 0;      // of the rows
  std::int64_t null_dim = 0;  // candidate_dim - rank: the raw symmetry dimension
  // The dimension of the symmetries that move the weights: the rank of xi -> xi . theta
  // on the null space (null directions whose tangent is zero are symmetries of nothing).
  std::int64_t moving_dim = 0;
  // Of the row matrix, descending, padded with zeros to candidate_dim (fewer rows than
  // columns leave dim - rows exact zeros).
  std::vector<double> singular_values;
  double smallest_kept = 0;    // singular_values[rank - 1] (0 when rank = 0)
  double largest_dropped = 0;  // singular_values[rank] (0 when null_dim = 0)
  // smallest_kept / largest_dropped (inf when that is 0); row_scale / largest_dropped
  // when rank = 0.
  double gap = 0;
  // What the rows would measure if nothing cancelled: sqrt(sum_r (sum_a ||G_a|| ||P_a||)^2),
  // an upper bound of the largest singular value. Not s_max: when the whole candidate is
  // a symmetry every row is rounding noise, and a cut relative to s_max would keep it.
  double row_scale = 0;
  std::vector<double> tangent_singular_values;  // of the tangent map on the null space
  Tensor null_coordinates;  // [null_dim, candidate_dim] float64, orthonormal rows
  Tensor null_matrices;     // [null_dim, n, n] float64: the same as matrices
  // Why the count can be trusted or not (rows vs candidate dimension), degenerate
  // weights (all-zero producers or consumers), ...
  std::vector<std::string> warnings;

  nlohmann::json to_json() const;  // everything but the bases
};

// In eval mode, runs the model on one sample of `inputs` at a time (cycling through
// them) and takes as many rows from each as it has outputs, one backward pass of that
// sample per row: the rows of one sample span at most its number of outputs, so a
// candidate of dimension d needs at least (d - null dim) / outputs samples. In training
// mode (BatchNorm couples the samples) it runs the whole batch once and every row is a
// functional of all outputs. The model's parameters must be float32 or float64 (one
// dtype); its train/eval mode is used as it is. Throws
// std::invalid_argument naming the interface and parameter when an axis does not exist
// or does not have `channels` entries, when the candidate is not n x n, or when rows < 1.
DiscoveryResult discover_symmetries(nn::Module& model, const Tensor& inputs, const Interface& interface,
                                    const LieAlgebra& candidate, const DiscoveryOptions& options = {});
// The same with the candidate gl(n).
DiscoveryResult discover_symmetries(nn::Module& model, const Tensor& inputs, const Interface& interface,
                                    const DiscoveryOptions& options = {});

// The row matrix itself, [rows, candidate_dim] float64 (for tests and for users who want
// their own rank decision). Same arguments and errors as discover_symmetries.
Tensor symmetry_constraint_rows(nn::Module& model, const Tensor& inputs, const Interface& interface,
                                const LieAlgebra& candidate, std::int64_t rows, std::uint64_t seed);

}  // namespace symgrad::symmetry
