#!/usr/bin/python3
"""Writes tests/data/expm_reference.json: high-precision matrix exponentials for
tests/symmetry/test_expm.cpp, and the Pade thresholds theta_m recomputed from their definition.

* Thresholds (Higham 2005, "The scaling and squaring method for the matrix exponential
  revisited", section 2): r_m(X) = exp(X + dX) with dX = h(X), h(x) = log(exp(-x) r_m(x)) =
  sum_{k >= 2m+1} c_k x^k. theta_m is the largest theta with  sum_k |c_k| theta^(k-1) <= u,
  u the unit roundoff (2^-53 float64, 2^-24 float32). The series is summed to 150 terms
  (as Higham did) in 60-digit arithmetic and the equation solved by bisection. The float64
  values must reproduce Higham's / scipy's table, which checks the method; the float32 ones
  are what symmetry/expm.cpp uses for float32.
* Reference exponentials: every input is a matrix of float32-representable doubles (so the
  float32 test runs on exactly the same matrix), exp is computed by scaling and squaring of
  the Taylor series in 320-bit fixed point (Python integers), and checked against
  mpmath.expm at 50 digits wherever n <= 8 (mpmath is too slow for n = 64) and against
  torch.matrix_exp in float64. Values are stored as the nearest double.
* kappa_exp (Higham's relative condition number, ||L(A)||_F-op ||A||_F / ||exp(A)||_F) is
  estimated by power iteration on L* L with torch's float64 expm, to scale test tolerances.

Random inputs come from random.Random seeded with the CRC-32 of the case name, so the file is
reproduced byte for byte. Run from anywhere:  /usr/bin/python3 tools/make_expm_reference.py
"""
import json
import struct
import math
import pathlib
import random
import zlib
from fractions import Fraction

import mpmath
import torch

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "expm_reference.json"
torch.set_default_dtype(torch.float64)

# ---- thresholds theta_m ---------------------------------------------------------------------


def pade_coefficients(m):
    """Numerator p_m(x) = sum_j c_j x^j of the [m/m] Pade approximant of e^x (q_m(x) = p_m(-x))."""
    return [Fraction(math.factorial(2 * m - j) * math.factorial(m),
                     math.factorial(2 * m) * math.factorial(j) * math.factorial(m - j)) for j in range(m + 1)]


def series_log(p, terms):
    """Power series of log(p(x)) for p(0) = 1, from (log p)' = p' / p."""
    p = p + [mpmath.mpf(0)] * (terms + 1 - len(p))
    dp = [(k + 1) * p[k + 1] for k in range(terms)]
    quotient = []  # q = p' / p, term by term
    for k in range(terms):
        quotient.append(dp[k] - sum(quotient[j] * p[k - j] for j in range(k)))
    return [mpmath.mpf(0)] + [quotient[k - 1] / k for k in range(1, terms + 1)]


def theta(m, unit_roundoff, terms=150):
    mpmath.mp.dps = 60
    p = [mpmath.mpf(c.numerator) / c.denominator for c in pade_coefficients(m)]
    log_p = series_log(p, terms)
    log_p_minus = [c * (-1) ** k for k, c in enumerate(log_p)]
    h = [a - b for a, b in zip(log_p, log_p_minus)]
    h[1] -= 1  # the -x of exp(-x)
    assert all(abs(c) < mpmath.mpf(10) ** -40 for c in h[: 2 * m + 1]), "Pade order check failed"
    coeffs = [abs(c) for c in h[2 * m + 1:]]

    def relative_backward_error(t):
        return sum(c * t ** (k + 2 * m) for k, c in enumerate(coeffs))  # h~(t) / t

    lo, hi = mpmath.mpf(0), mpmath.mpf(20)
    for _ in range(200):
        mid = (lo + hi) / 2
        if relative_backward_error(mid) <= unit_roundoff:
            lo = mid
        else:
            hi = mid
    return float(lo)


# ---- high-precision exp in fixed point -------------------------------------------------------

BITS = 320
ONE = 1 << BITS


def fixed(matrix):
    return [[int(Fraction(float(v)) * ONE) for v in row] for row in matrix]


def fixed_matmul(x, y):
    columns = list(zip(*y))
    return [[sum(map(int.__mul__, row, col)) >> BITS for col in columns] for row in x]


def exp_fixed(matrix):
    """exp by scaling the 1-norm below 2^-10, 40 Taylor terms (error < 2^-400), squaring back."""
    n = len(matrix)
    norm = max(sum(abs(float(matrix[i][j])) for i in range(n)) for j in range(n))
    s = max(0, math.ceil(math.log2(norm)) + 10) if norm > 0 else 0
    x = [[v >> s for v in row] for row in fixed(matrix)]  # exact: entries carry far fewer bits
    result = [[ONE if i == j else 0 for j in range(n)] for i in range(n)]
    term = [row[:] for row in result]
    for k in range(1, 41):
        term = [[v // k for v in row] for row in fixed_matmul(term, x)]
        result = [[a + b for a, b in zip(ra, rb)] for ra, rb in zip(result, term)]
    for _ in range(s):
        result = fixed_matmul(result, result)
    return [[float(Fraction(v, ONE)) for v in row] for row in result]


def exp_mpmath(matrix):
    mpmath.mp.dps = 50
    e = mpmath.expm(mpmath.matrix([[mpmath.mpf(float(v)) for v in row] for row in matrix]))
    return [[float(e[i, j]) for j in range(len(matrix))] for i in range(len(matrix))]


def kappa_exp(a, iterations=30):
    """||L(A)|| ||A||_F / ||e^A||_F with ||L(A)|| the operator 2-norm (Frobenius on matrices)."""
    a = torch.tensor(a)
    n = a.shape[0]

    def frechet(x, e):
        block = torch.zeros(2 * n, 2 * n)
        block[:n, :n], block[:n, n:], block[n:, n:] = x, e, x
        return torch.matrix_exp(block)[:n, n:]

    e = torch.randn(n, n, generator=torch.Generator().manual_seed(n))
    norm = 0.0
    for _ in range(iterations):
        e = e / e.norm()
        e = frechet(a.T, frechet(a, e))  # L*(L(E)), L* = L(A^T, .)
        norm = math.sqrt(e.norm().item())
    return norm * a.norm().item() / torch.matrix_exp(a).norm().item()


# ---- the cases ----------------------------------------------------------------------------------


def f32(matrix):
    return [[struct.unpack("f", struct.pack("f", v))[0] for v in row] for row in matrix]


def one_norm(matrix):
    n = len(matrix)
    return max(sum(abs(matrix[i][j]) for i in range(n)) for j in range(n))


def random_matrix(name, n, norm):
    """Uniform [-1, 1) entries scaled to 1-norm `norm`, rounded to float32."""
    rng = random.Random(zlib.crc32(name.encode()))
    m = [[rng.uniform(-1, 1) for _ in range(n)] for _ in range(n)]
    scale = norm / one_norm(m)
    return f32([[v * scale for v in row] for row in m])


def dyadic_matrix(name, n, norm):
    """Entries k / 64 (short decimals, to keep the file small for n = 64), 1-norm about `norm`."""
    rng = random.Random(zlib.crc32(name.encode()))
    k_max = max(1, round(2 * 64 * norm / n))
    return [[rng.randint(-k_max, k_max) / 64 for _ in range(n)] for _ in range(n)]


def cases():
    out = []
    # One per Pade degree and some squarings: 1-norms 0.01 (m = 3) ... 50 (m = 13, s = 4).
    for norm in (0.01, 0.2, 0.9, 2.0, 5.0, 20.0, 50.0):
        out.append((f"random n=4 norm={norm}", random_matrix(f"random4-{norm}", 4, norm)))
    out.append(("random n=1", [[-3.5]]))
    out.append(("random n=2 norm=3", random_matrix("random2", 2, 3.0)))
    out.append(("random n=8 norm=10", random_matrix("random8", 8, 10.0)))
    out.append(("random n=16 norm=25", random_matrix("random16", 16, 25.0)))
    out.append(("dyadic n=32 norm=30", dyadic_matrix("dyadic32", 32, 30.0)))
    out.append(("dyadic n=64 norm=5", dyadic_matrix("dyadic64-5", 64, 5.0)))
    out.append(("dyadic n=64 norm=50", dyadic_matrix("dyadic64-50", 64, 50.0)))
    skew = random_matrix("skew8", 8, 10.0)
    out.append(("skew n=8", f32([[skew[i][j] - skew[j][i] for j in range(8)] for i in range(8)])))
    # Non-normal: Al-Mohy & Higham (2009)'s [[1, b], [0, -1]] example, the one that
    # overscaling hurts, with b = 48 (1-norm 49).
    out.append(("nonnormal 2x2 b=48", [[1.0, 48.0], [0.0, -1.0]]))
    # Nearly defective upper triangular: eigenvalues 1 + 1e-6 k, off-diagonal entries ~ 8.
    rng = random.Random(zlib.crc32(b"triangular6"))
    tri = [[(1 + 1e-6 * i if i == j else (rng.uniform(4, 8) if j > i else 0.0)) for j in range(6)]
           for i in range(6)]
    out.append(("nearly defective triangular n=6", f32(tri)))
    # Nilpotent: exp is a finite polynomial.
    out.append(("nilpotent n=5", f32([[(0.75 * (j - i) if j > i else 0.0) for j in range(5)] for i in range(5)])))
    # Widely spread eigenvalues -30 ... 10, conjugated by a well-conditioned V.
    rng = random.Random(zlib.crc32(b"spread8"))
    v = torch.tensor([[rng.uniform(-0.3, 0.3) + (1.0 if i == j else 0.0) for j in range(8)] for i in range(8)])
    d = torch.diag(torch.linspace(-30, 10, 8))
    out.append(("spread eigenvalues n=8", f32((v @ d @ torch.linalg.inv(v)).tolist())))
    return out


def packed(matrix):
    return {"shape": [len(matrix), len(matrix)], "values": [v for row in matrix for v in row]}


def main():
    thresholds = {}
    for dtype, u, degrees in (("float64", 2.0 ** -53, (3, 5, 7, 9, 13)), ("float32", 2.0 ** -24, (3, 5, 7))):
        thresholds[dtype] = {str(m): theta(m, u) for m in degrees}
        print(dtype, thresholds[dtype], flush=True)
    records = []
    for name, a in cases():
        e = exp_fixed(a)
        n = len(a)
        e_torch = torch.matrix_exp(torch.tensor(a))
        torch_error = ((e_torch - torch.tensor(e)).norm() / torch.tensor(e).norm()).item()
        assert torch_error < 1e-10, (name, torch_error)
        mp_error = None
        if n <= 8:
            e_mp = torch.tensor(exp_mpmath(a))
            mp_error = ((e_mp - torch.tensor(e)).norm() / e_mp.norm()).item()
            assert mp_error == 0.0 or mp_error < 1e-16, (name, mp_error)
        kappa = kappa_exp(a)
        print(f"{name}: norm1 {one_norm(a):.4g} kappa_exp {kappa:.3g} torch rel err {torch_error:.2e} "
              f"mpmath rel err {mp_error}", flush=True)
        records.append({"name": name, "norm1": one_norm(a), "kappa_exp": float(f"{kappa:.3g}"),
                        "a": packed(a), "expm": packed(e)})
    OUTPUT.write_text(json.dumps({
        "description": "exp(A) of float32-representable A, 320-bit fixed-point Taylor scaling and squaring "
                       "checked against mpmath.expm (50 digits, n <= 8); nearest doubles. thresholds: "
                       "Higham 2005 theta_m recomputed for u = 2^-53 and 2^-24. "
                       "Written by tools/make_expm_reference.py",
        "thresholds": thresholds, "cases": records}, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
