#pragma once
// The matrix exponential and its Frechet derivative, batched and differentiable to any
// order (teleportation differentiates through exp twice).
//
// Forward: scaling and squaring with diagonal Pade approximants of degree 3, 5, 7, 9 or
// 13, chosen from the 1-norm as in Higham (2005) / scipy.linalg.expm (theta_13 = 5.37 in
// float64), with float32's own thresholds (Higham's table for unit roundoff 2^-24).
// Backward: the adjoint of the Frechet derivative, gA = L(A^T, G), computed as the
// top-right block of exp([[A^T, G], [0, A^T]]) with the same differentiable expm, so
// the backward is itself built from ops and grad of grad follows.
#include <cstdint>

#include "engine/engine.hpp"

namespace symgrad::symmetry {

// exp(A) for A [..., n, n] (float32 or float64), computed in A's dtype; 1 x 1 matrices
// use the scalar exp. Throws std::invalid_argument naming the shape for a non-square or
// rank < 2 input, and for non-finite entries. Measured against 50-digit references
// (tests/data/expm_reference.json, 1-norms up to 56, n up to 64): relative Frobenius
// error <= 5e-15 in float64, <= 2e-6 in float32.
Tensor expm(const Tensor& a);

// L(A, E) = d/dt exp(A + tE) at t = 0, for A, E [..., n, n] of one shape; differentiable
// in A and E.
Tensor expm_frechet(const Tensor& a, const Tensor& e);

// What expm chose for one matrix (n >= 2) of 1-norm norm1: the Pade degree and the
// number of squarings s. Throws for a negative or non-finite norm1.
struct ExpmPlan {
  int pade_degree = 0;
  int squarings = 0;
};
ExpmPlan expm_plan(double norm1, DType dtype);

// log(G) for G [..., n, n] near the identity (||G - I||_1 < 1): inverse scaling and
// squaring (square roots by Denman-Beavers) and a Pade/Gregory series; throws when G is
// too far from I to guarantee the principal logarithm. Not differentiable (no grad).
Tensor logm_near_identity(const Tensor& g);

namespace detail {
// expm's forward without autograd (symmetry/expm_pade.cpp): out = exp(a) per matrix, for a
// finite, contiguous [..., n, n] tensor and a preallocated out of the same shape and dtype.
void expm_forward(const Tensor& a, Tensor& out);
}  // namespace detail

}  // namespace symgrad::symmetry
