// Plain loops over the definition of a grouped, strided, dilated, zero-padded 2-D
// convolution: the specification the fast kernels in conv.cpp are tested against.
#include <algorithm>

#include "engine/kernels/conv.hpp"

namespace symgrad::kernels {
namespace {

// Calls visit(x_index, w_index, y_index) for every product w[o, c, p, q] *
// x[n, group(o) * C_in/groups + c, i*s - pad + p*d, j*s - pad + q*d] that lands inside x
// and contributes to y[n, o, i, j]. The forward and both adjoints accumulate the same products.
template <class Visit>
void for_each_product(const ConvGeometry& g, Visit visit) {
  const std::int64_t cin_g = g.in_per_group(), cout_g = g.out_per_group();
  for (std::int64_t n = 0; n < g.batch; ++n)
    for (std::int64_t o = 0; o < g.out_channels; ++o)
      for (std::int64_t i = 0; i < g.out_h; ++i)
        for (std::int64_t j = 0; j < g.out_w; ++j) {
          const std::int64_t y_index = ((n * g.out_channels + o) * g.out_h + i) * g.out_w + j;
          for (std::int64_t c = 0; c < cin_g; ++c)
            for (std::int64_t p = 0; p < g.kernel_h; ++p)
              for (std::int64_t q = 0; q < g.kernel_w; ++q) {
                const std::int64_t row = i * g.stride_h - g.pad_h + p * g.dilation_h;
                const std::int64_t col = j * g.stride_w - g.pad_w + q * g.dilation_w;
                if (row < 0 || row >= g.in_h || col < 0 || col >= g.in_w) continue;
                const std::int64_t channel = (o / cout_g) * cin_g + c;
                const std::int64_t x_index = ((n * g.in_channels + channel) * g.in_h + row) * g.in_w + col;
                const std::int64_t w_index = ((o * cin_g + c) * g.kernel_h + p) * g.kernel_w + q;
                visit(x_index, w_index, y_index);
              }
        }
}

}  // namespace

void conv2d_reference(DType dt, const ConvGeometry& g, const void* x, const void* w, const void* bias, void* y) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* X = static_cast<const T*>(x);
    const T* W = static_cast<const T*>(w);
    T* Y = static_cast<T*>(y);
    const std::int64_t plane = g.out_h * g.out_w;
    for (std::int64_t n = 0; n < g.batch; ++n)
      for (std::int64_t o = 0; o < g.out_channels; ++o)
        std::fill_n(Y + (n * g.out_channels + o) * plane, plane, bias ? static_cast<const T*>(bias)[o] : T(0));
    for_each_product(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) { Y[yi] += W[wi] * X[xi]; });
  });
}

void conv2d_input_grad_reference(DType dt, const ConvGeometry& g, const void* grad_y, const void* w, void* grad_x) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* GY = static_cast<const T*>(grad_y);
    const T* W = static_cast<const T*>(w);
    T* GX = static_cast<T*>(grad_x);
    std::fill_n(GX, g.batch * g.in_channels * g.in_h * g.in_w, T(0));
    for_each_product(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) { GX[xi] += W[wi] * GY[yi]; });
  });
}

void conv2d_weight_grad_reference(DType dt, const ConvGeometry& g, const void* x, const void* grad_y,
                                  void* grad_w) {
  dispatch_dtype(dt, [&](auto zero) {
    using T = decltype(zero);
    const T* X = static_cast<const T*>(x);
    const T* GY = static_cast<const T*>(grad_y);
    T* GW = static_cast<T*>(grad_w);
    std::fill_n(GW, g.out_channels * g.in_per_group() * g.taps(), T(0));
    for_each_product(g, [&](std::int64_t xi, std::int64_t wi, std::int64_t yi) { GW[wi] += X[xi] * GY[yi]; });
  });
}

}  // namespace symgrad::kernels
