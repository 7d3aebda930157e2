// The 1x1 convolution of one sample as a direct SIMD product, y [M, P] = a [M, K] x [K, P].
//
// Why not BLAS: in the networks of pde/ these products are small and many (one per
// sample: M and K between 16 and 512, P = 28 * 28 down to 7 * 7), and a BLAS call per
// sample packs both operands into its own layout and, for beta = 0, zeroes y before
// accumulating into it: for K = 16 that is more memory traffic than the product itself.
// Here y is written once, x is read in place (a block of 2 vectors of pixels over all K
// rows stays in L1 while every output row is computed from it), and the caller can run
// the samples on different threads.
//
// The kernel: 6 output rows x 2 vectors of pixels in 12 independent sums (enough to hide
// the FMA latency; 15 of the 16 AVX2 registers); per k, two loads of x, six broadcasts
// of a, twelve FMAs. Leftover rows go 4, then 1 at a time. The last pixel block of a row is moved
// left to end exactly at P (recomputing a few pixels with the same arithmetic, so with
// identical results) instead of a partial store.
#include <cstdint>

#include "engine/kernels/conv.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "engine/kernels/conv_pointwise.cpp"
#include <hwy/foreach_target.h>  // re-includes this file once per SIMD target
#include <hwy/highway.h>

HWY_BEFORE_NAMESPACE();
namespace symgrad::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[m, p] = init(m) + sum_k a[m * a_row + k * a_col] * x[k * cols + p] for m < rows, p < cols,
// init(m) = bias ? bias[m] : 0. Needs cols >= 2 * Lanes.
template <class T>
void PointwiseProduct(const T* HWY_RESTRICT a, std::int64_t a_row, std::int64_t a_col, const T* HWY_RESTRICT bias,
                      std::int64_t rows, std::int64_t depth, const T* HWY_RESTRICT x, std::int64_t cols,
                      T* HWY_RESTRICT y) {
  const hn::ScalableTag<T> d;
  const std::int64_t lanes = static_cast<std::int64_t>(hn::Lanes(d)), block = 2 * lanes;
  auto init = [&](std::int64_t m) { return hn::Set(d, bias ? bias[m] : T(0)); };
  for (std::int64_t p0 = 0; p0 < cols; p0 += block) {
    const std::int64_t p = p0 + block <= cols ? p0 : cols - block;  // the last block ends at cols
    const T* xp = x + p;
    std::int64_t m = 0;
    for (; m + 6 <= rows; m += 6) {
      auto s00 = init(m), s01 = s00, s10 = init(m + 1), s11 = s10, s20 = init(m + 2), s21 = s20;
      auto s30 = init(m + 3), s31 = s30, s40 = init(m + 4), s41 = s40, s50 = init(m + 5), s51 = s50;
      const T* a0 = a + m * a_row;
      for (std::int64_t k = 0; k < depth; ++k) {
        const auto x0 = hn::LoadU(d, xp + k * cols), x1 = hn::LoadU(d, xp + k * cols + lanes);
        const T* ak = a0 + k * a_col;
        auto w = hn::Set(d, ak[0]);
        s00 = hn::MulAdd(w, x0, s00);
        s01 = hn::MulAdd(w, x1, s01);
        w = hn::Set(d, ak[a_row]);
        s10 = hn::MulAdd(w, x0, s10);
        s11 = hn::MulAdd(w, x1, s11);
        w = hn::Set(d, ak[2 * a_row]);
        s20 = hn::MulAdd(w, x0, s20);
        s21 = hn::MulAdd(w, x1, s21);
        w = hn::Set(d, ak[3 * a_row]);
        s30 = hn::MulAdd(w, x0, s30);
        s31 = hn::MulAdd(w, x1, s31);
        w = hn::Set(d, ak[4 * a_row]);
        s40 = hn::MulAdd(w, x0, s40);
        s41 = hn::MulAdd(w, x1, s41);
        w = hn::Set(d, ak[5 * a_row]);
        s50 = hn::MulAdd(w, x0, s50);
        s51 = hn::MulAdd(w, x1, s51);
      }
      T* out = y + m * cols + p;
      hn::StoreU(s00, d, out);
      hn::StoreU(s01, d, out + lanes);
      hn::StoreU(s10, d, out + cols);
      hn::StoreU(s11, d, out + cols + lanes);
      hn::StoreU(s20, d, out + 2 * cols);
      hn::StoreU(s21, d, out + 2 * cols + lanes);
      hn::StoreU(s30, d, out + 3 * cols);
      hn::StoreU(s31, d, out + 3 * cols + lanes);
      hn::StoreU(s40, d, out + 4 * cols);
      hn::StoreU(s41, d, out + 4 * cols + lanes);
      hn::StoreU(s50, d, out + 5 * cols);
      hn::StoreU(s51, d, out + 5 * cols + lanes);
    }
    for (; m + 4 <= rows; m += 4) {
      auto s00 = init(m), s01 = s00, s10 = init(m + 1), s11 = s10;
      auto s20 = init(m + 2), s21 = s20, s30 = init(m + 3), s31 = s30;
      const T* a0 = a + m * a_row;
      for (std::int64_t k = 0; k < depth; ++k) {
        const auto x0 = hn::LoadU(d, xp + k * cols), x1 = hn::LoadU(d, xp + k * cols + lanes);
        const T* ak = a0 + k * a_col;
        const auto w0 = hn::Set(d, ak[0]), w1 = hn::Set(d, ak[a_row]);
        s00 = hn::MulAdd(w0, x0, s00);
        s01 = hn::MulAdd(w0, x1, s01);
        s10 = hn::MulAdd(w1, x0, s10);
        s11 = hn::MulAdd(w1, x1, s11);
        const auto w2 = hn::Set(d, ak[2 * a_row]), w3 = hn::Set(d, ak[3 * a_row]);
        s20 = hn::MulAdd(w2, x0, s20);
        s21 = hn::MulAdd(w2, x1, s21);
        s30 = hn::MulAdd(w3, x0, s30);
        s31 = hn::MulAdd(w3, x1, s31);
      }
      T* out = y + m * cols + p;
      hn::StoreU(s00, d, out);
      hn::StoreU(s01, d, out + lanes);
      hn::StoreU(s10, d, out + cols);
      hn::StoreU(s11, d, out + cols + lanes);
      hn::StoreU(s20, d, out + 2 * cols);
      hn::StoreU(s21, d, out + 2 * cols + lanes);
      hn::StoreU(s30, d, out + 3 * cols);
      hn::StoreU(s31, d, out + 3 * cols + lanes);
    }
    for (; m < rows; ++m) {  // the last rows, one at a time
      auto s0 = init(m), s1 = s0;
      for (std::int64_t k = 0; k < depth; ++k) {
        const auto w = hn::Set(d, a[m * a_row + k * a_col]);
        s0 = hn::MulAdd(w, hn::LoadU(d, xp + k * cols), s0);
        s1 = hn::MulAdd(w, hn::LoadU(d, xp + k * cols + lanes), s1);
      }
      hn::StoreU(s0, d, y + m * cols + p);
      hn::StoreU(s1, d, y + m * cols + p + lanes);
    }
  }
}

void PointwiseProductF32(const float* a, std::int64_t a_row, std::int64_t a_col, const float* bias, std::int64_t rows,
                         std::int64_t depth, const float* x, std::int64_t cols, float* y) {
  PointwiseProduct(a, a_row, a_col, bias, rows, depth, x, cols, y);
}
void PointwiseProductF64(const double* a, std::int64_t a_row, std::int64_t a_col, const double* bias,
                         std::int64_t rows, std::int64_t depth, const double* x, std::int64_t cols, double* y) {
  PointwiseProduct(a, a_row, a_col, bias, rows, depth, x, cols, y);
}

// Lanes of T on the target this code was compiled for.
std::int64_t LanesF32() { return static_cast<std::int64_t>(hn::Lanes(hn::ScalableTag<float>())); }
std::int64_t LanesF64() { return static_cast<std::int64_t>(hn::Lanes(hn::ScalableTag<double>())); }

}  // namespace symgrad::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace symgrad::kernels {

HWY_EXPORT(PointwiseProductF32);
HWY_EXPORT(PointwiseProductF64);
HWY_EXPORT(LanesF32);
HWY_EXPORT(LanesF64);

bool pointwise_product_fits(DType dt, std::int64_t cols) {
  const std::int64_t lanes = dt == DType::f32 ? HWY_DYNAMIC_DISPATCH(LanesF32)() : HWY_DYNAMIC_DISPATCH(LanesF64)();
  return cols >= 2 * lanes;
}

void pointwise_product(DType dt, const void* a, std::int64_t a_row, std::int64_t a_col, const void* bias,
                       std::int64_t rows, std::int64_t depth, const void* x, std::int64_t cols, void* y) {
  if (dt == DType::f32)
    HWY_DYNAMIC_DISPATCH(PointwiseProductF32)(static_cast<const float*>(a), a_row, a_col,
                                              static_cast<const float*>(bias), rows, depth,
                                              static_cast<const float*>(x), cols, static_cast<float*>(y));
  else
    HWY_DYNAMIC_DISPATCH(PointwiseProductF64)(static_cast<const double*>(a), a_row, a_col,
                                              static_cast<const double*>(bias), rows, depth,
                                              static_cast<const double*>(x), cols, static_cast<double*>(y));
}

}  // namespace symgrad::kernels
#endif  // HWY_ONCE
