#pragma once
// Audits of a model's gradients through one of its weight symmetries (background.md §3,
// Kunin et al. 2021, Tanaka & Kunin 2021). For a symmetry with algebra g and action
// theta -> g . theta, and a loss L(theta) = loss(f(theta, x), y):
//  1. invariance: f(g . theta, x) = f(theta, x), measured against 100 u cond(g);
//  2. orbit orthogonality (the Noether identity): <grad L, xi . theta> = 0 for every basis
//     xi, i.e. the moment map of grad L projected on the algebra vanishes;
//  3. the derivative of L along the orbit, d/dt L(exp(t xi) . theta) at 0, three ways:
//     autodiff through expm and the action, the moment map <xi, M>, central differences;
//  4. covariance: grad L(g . theta) = the pushed-forward grad L(theta) (a parameter
//     multiplied by M along an axis has its gradient multiplied by M^-T there).
// Check 3 uses random xi from gl(n), not only from the algebra: along a symmetry all three
// values are zero, and agreement of zeros proves little; off the algebra they are not.
// Residuals are relative (to ||grad L|| ||theta||, ||grad L||, |L|); tolerances follow the
// background page: float64 1e-12, float32 1e-4; invariance 100 u cond(g).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.hpp"
#include "nn/module.hpp"
#include "symmetry/svd.hpp"
#include "symmetry/weight_symmetry.hpp"

namespace symgrad::symmetry {


struct AuditOptions {
  double condition_number = 10.0;  // of the random g in 1 and 4 (orthogonal g: always 1)
  int group_samples = 3;           // random g per check
  int tangent_samples = 3;         // random xi for check 3
  std::uint64_t seed = 0;
  // Relative tolerance of checks 2-4; 0 picks the dtype's (1e-12 float64, 1e-4 float32).
  double tolerance = 0.0;
};

// A random element of the algebra's group with the given 2-norm condition number where
// the group allows it (gl, sl up to the determinant, diagonal: cond exactly; so: 1;
// others: exp of a random element scaled until cond(g) is reached or exceeded).
Tensor random_group_element(const LieAlgebra& algebra, double condition_number, Generator& gen,
                            DType dtype);

struct InvarianceCheck {
  double condition = 0;             // cond(g), the largest over the samples
  double max_output_change = 0;     // max |f(g.theta) - f(theta)|
  double relative_output_change = 0;  // / max |f(theta)|
  double relative_loss_change = 0;  // |L(g.theta) - L(theta)| / |L(theta)|
  double bound = 0;                 // 100 u cond(g)
  bool passed = false;
};

struct OrthogonalityCheck {
  Tensor moment_map;                 // M for grad L ([n, n])
  std::vector<double> coordinates;   // <e_k, M> / (||grad L|| ||theta||), per basis element
  double max_relative = 0;
  bool passed = false;
};

struct OrbitDerivativeCheck {
  // Per random xi: the three values and their largest disagreement, relative to
  // ||grad L|| ||xi . theta||.
  std::vector<double> autodiff, moment_map, finite_difference;
  double max_relative_disagreement = 0;  // autodiff vs moment map (exact identities)
  double max_relative_fd = 0;            // vs finite differences (truncation limited)
  bool passed = false;
};

struct CovarianceCheck {
  double condition = 0;
  double relative_residual = 0;  // ||grad L(g.theta) - g_* grad L(theta)|| / ||g_* grad L||
  bool passed = false;
};

struct SymmetryAudit {
  WeightSymmetry symmetry;
  std::string dtype;
  bool model_in_training_mode = false;
  InvarianceCheck invariance;
  OrthogonalityCheck orthogonality;
  OrbitDerivativeCheck orbit_derivative;
  CovarianceCheck covariance;
  double tolerance = 0;
  bool holds = false;                 // every check passed
  std::vector<std::string> notes;     // the symmetry's notes plus what the audit saw
  nlohmann::json to_json() const;
};

// Runs the four checks for one symmetry. The model's mode (train/eval) is used as is; a
// symmetry whose ModeRequirement the mode does not meet is still audited (and reported as
// broken, with a note saying why). The model's parameters are left as they were.
SymmetryAudit audit_symmetry(nn::Module& model, const WeightSymmetry& symmetry,
                             const Tensor& x, const LossFn& loss,
                             const AuditOptions& options = {});

// A fixed-width table, one row per audit: symmetry, algebra, dim, the four residuals with
// their bounds, and HOLDS / BROKEN.
std::string format_audit_table(const std::vector<SymmetryAudit>& audits);

}  // namespace symgrad::symmetry
