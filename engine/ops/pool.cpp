// 2-D max and average pooling (NCHW), forward next to backward. Both backward rules
// are ops with their own backward, so gradients of gradients work:
//   max_pool2d  -> scatter the gradient to each window's argmax; the adjoint of that
//                  scatter is a gather at the same indices, and vice versa.
//   avg_pool2d  -> linear; its backward spreads g / (kH kW) over each window, and the
//                  adjoint of that spreading is avg_pool2d again.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/kernels/threads.hpp"
#include "engine/ops/conv.hpp"

namespace symgrad {
namespace {

struct PoolGeometry {
  std::int64_t planes = 0;  // N * C
  std::int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  std::int64_t kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
  Shape in_shape, out_shape;

  std::int64_t in_plane() const { return in_h * in_w; }
  std::int64_t out_plane() const { return out_h * out_w; }
  std::int64_t window() const { return kernel_h * kernel_w; }
};

std::string pair_str(std::int64_t h, std::int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

PoolGeometry pool_geometry(const char* op, const Shape& x, const Pool2dOptions& o) {
  auto fail = [op](const std::string& m) { throw std::invalid_argument(std::string(op) + ": " + m); };
  if (x.size() != 4) fail("input " + shape_str(x) + " must be 4-D [N, C, H, W]");
  if (x[2] == 0 || x[3] == 0) fail("input " + shape_str(x) + " has no pixels to pool");
  if (o.kernel_h <= 0 || o.kernel_w <= 0) fail("kernel " + pair_str(o.kernel_h, o.kernel_w) + " must be positive");
  if (o.stride_h < 0 || o.stride_w < 0)
    fail("stride " + pair_str(o.stride_h, o.stride_w) + " must be positive (or 0 for the kernel size)");
  // More padding than half a window would allow windows made only of padding.
  if (o.padding_h < 0 || o.padding_w < 0 || 2 * o.padding_h > o.kernel_h || 2 * o.padding_w > o.kernel_w)
    fail("padding " + pair_str(o.padding_h, o.padding_w) + " must be between 0 and half the kernel " +
         pair_str(o.kernel_h, o.kernel_w));
  PoolGeometry g;
  g.planes = x[0] * x[1];
  g.in_h = x[2];
  g.in_w = x[3];
  g.kernel_h = o.kernel_h;
  g.kernel_w = o.kernel_w;
  g.stride_h = o.stride_h == 0 ? o.kernel_h : o.stride_h;
  g.stride_w = o.stride_w == 0 ? o.kernel_w : o.stride_w;
  g.pad_h = o.padding_h;
  g.pad_w = o.padding_w;
  const std::int64_t padded_h = g.in_h + 2 * g.pad_h, padded_w = g.in_w + 2 * g.pad_w;
  if (g.kernel_h > padded_h || g.kernel_w > padded_w)
    fail("kernel " + pair_str(g.kernel_h, g.kernel_w) + " is larger than input " + shape_str(x) + " padded to " +
         pair_str(padded_h, padded_w));
  g.out_h = (padded_h - g.kernel_h) / g.stride_h + 1;
  g.out_w = (padded_w - g.kernel_w) / g.stride_w + 1;
  g.in_shape = x;
  g.out_shape = {x[0], x[1], g.out_h, g.out_w};
  return g;
}

// Calls visit(out_index, in_index) for every in-bounds input position of every window of
// one plane (indices within the plane), windows in output order, positions row-major.
template <class Visit>
void for_each_window_tap(const PoolGeometry& g, Visit visit) {
  for (std::int64_t i = 0; i < g.out_h; ++i)
    for (std::int64_t j = 0; j < g.out_w; ++j)
      for (std::int64_t p = 0; p < g.kernel_h; ++p) {
        const std::int64_t row = i * g.stride_h - g.pad_h + p;
        if (row < 0 || row >= g.in_h) continue;
        for (std::int64_t q = 0; q < g.kernel_w; ++q) {
          const std::int64_t col = j * g.stride_w - g.pad_w + q;
          if (col >= 0 && col < g.in_w) visit(i * g.out_w + j, row * g.in_w + col);
        }
      }
}

// Runs fn(plane) for every plane over the thread pool.
template <class Fn>
void for_each_plane(const PoolGeometry& g, Fn fn) {
  const std::int64_t grain = std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, g.out_plane() * g.window()));
  kernels::parallel_for(g.planes, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t plane = begin; plane < end; ++plane) fn(plane);
  });
}

// max_pool2d of one plane when every tap is inside the image (no padding). Same rule
// as the general loop (first maximum in row-major order wins; a NaN wins and stays),
// but the common case is written as selects the compiler turns into max/cmov: on
// real data "is this tap larger?" is a coin flip that a branch predictor loses, and
// this loop was a quarter of a small CNN's training step. A window holding a NaN is
// redone with the exact rule.
template <class T>
void max_pool_plane_unpadded(const PoolGeometry& g, const T* in, T* out, std::int64_t* out_index) {
  if (g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2) {
    // The usual downsampling window, with its four taps spelled out.
    for (std::int64_t i = 0; i < g.out_h; ++i)
      for (std::int64_t j = 0; j < g.out_w; ++j) {
        const std::int64_t a = 2 * i * g.in_w + 2 * j, taps[4] = {a, a + 1, a + g.in_w, a + g.in_w + 1};
        T best = in[a];
        std::int64_t best_at = a;
        bool saw_nan = std::isnan(best);
        for (int t = 1; t < 4; ++t) {
          const T v = in[taps[t]];
          // (mask arithmetic: GCC emits a branch for the plain ?: on the index)
          const std::int64_t larger = -static_cast<std::int64_t>(v > best);
          best_at = (taps[t] & larger) | (best_at & ~larger);
          best = v > best ? v : best;
          saw_nan |= std::isnan(v);
        }
        if (saw_nan && !std::isnan(best))
          for (int t = 1; t < 4; ++t)
            if (std::isnan(in[taps[t]])) {
              best = in[taps[t]];
              best_at = taps[t];
              break;
            }
        out[i * g.out_w + j] = best;
        out_index[i * g.out_w + j] = best_at;
      }
    return;
  }
  for (std::int64_t i = 0; i < g.out_h; ++i)
    for (std::int64_t j = 0; j < g.out_w; ++j) {
      const std::int64_t corner = i * g.stride_h * g.in_w + j * g.stride_w;
      T best = in[corner];
      std::int64_t best_at = corner;
      bool saw_nan = false;
      for (std::int64_t p = 0; p < g.kernel_h; ++p)
        for (std::int64_t q = 0; q < g.kernel_w; ++q) {
          const std::int64_t at = corner + p * g.in_w + q;
          const T v = in[at];
          const std::int64_t larger = -static_cast<std::int64_t>(v > best);
          best_at = (at & larger) | (best_at & ~larger);
          best = v > best ? v : best;
          saw_nan |= std::isnan(v);
        }
      if (saw_nan) {
        for (std::int64_t p = 0; p < g.kernel_h && !std::isnan(best); ++p)
          for (std::int64_t q = 0; q < g.kernel_w; ++q) {
            const std::int64_t at = corner + p * g.in_w + q;
            if (std::isnan(in[at])) {
              best = in[at];
              best_at = at;
              break;
            }
          }
      }
      out[i * g.out_w + j] = best;
      out_index[i * g.out_w + j] = best_at;
    }
}

// ---- gather / scatter at max_pool2d's argmax indices ---------------------------------
// argmax[plane * out_plane + k] is the position within the input plane that output k took.
using Indices = std::shared_ptr<const std::vector<std::int64_t>>;

Tensor scatter_to_argmax(const Tensor& g, const Indices& argmax, const PoolGeometry& geo);

// y[plane, k] = x[plane, argmax[plane, k]]. Saves the indices; its adjoint is the scatter.
Tensor gather_at_argmax(const Tensor& x, const Indices& argmax, const PoolGeometry& geo) {
  Tensor y = Tensor::empty(geo.out_shape, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    const std::int64_t* index = argmax->data();
    for_each_plane(geo, [&](std::int64_t plane) {
      for (std::int64_t k = plane * geo.out_plane(); k < (plane + 1) * geo.out_plane(); ++k)
        dst[k] = src[plane * geo.in_plane() + index[k]];
    });
  });
  if (auto node = record("max_pool2d_gather", y, {x}))
    node->backward = [argmax, geo](const Tensor& gy, const Node&) {
      return TensorList{scatter_to_argmax(gy, argmax, geo)};
    };
  return y;
}

// dx = zeros with g[plane, k] added at argmax[plane, k]. Saves the indices; its adjoint is the gather.
Tensor scatter_to_argmax(const Tensor& g, const Indices& argmax, const PoolGeometry& geo) {
  Tensor dx = Tensor::empty(geo.in_shape, g.dtype());
  dispatch_dtype(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* src = g.data<T>();
    T* dst = dx.data<T>();
    const std::int64_t* index = argmax->data();
    for_each_plane(geo, [&](std::int64_t plane) {
      T* dst_plane = dst + plane * geo.in_plane();
      std::fill(dst_plane, dst_plane + geo.in_plane(), T(0));
      for (std::int64_t k = plane * geo.out_plane(); k < (plane + 1) * geo.out_plane(); ++k)
        dst_plane[index[k]] += src[k];
    });
  });
  if (auto node = record("max_pool2d_scatter", dx, {g}))
    node->backward = [argmax, geo](const Tensor& gdx, const Node&) {
      return TensorList{gather_at_argmax(gdx, argmax, geo)};
    };
  return dx;
}

// ---- average pooling's adjoint ----------------------------------------------------------
Tensor avg_pool2d_spread(const Tensor& g, const PoolGeometry& geo, const Pool2dOptions& opts);

}  // namespace

// max_pool2d: saves the argmax of each window (ties: the first in row-major order, as
// PyTorch; a NaN wins and propagates). The gradient goes to the argmax.
Tensor max_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  if (!x.defined()) throw std::invalid_argument("max_pool2d: the input is undefined");
  const PoolGeometry geo = pool_geometry("max_pool2d", x.shape(), opts);
  // -1 marks a window whose argmax is not known yet.
  auto argmax = std::make_shared<std::vector<std::int64_t>>(static_cast<std::size_t>(shape_numel(geo.out_shape)),
                                                            std::int64_t(-1));
  Tensor y = Tensor::empty(geo.out_shape, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    std::int64_t* index = argmax->data();
    for_each_plane(geo, [&](std::int64_t plane) {
      const T* in = src + plane * geo.in_plane();
      T* out = dst + plane * geo.out_plane();
      std::int64_t* out_index = index + plane * geo.out_plane();
      if (geo.pad_h == 0 && geo.pad_w == 0) {
        max_pool_plane_unpadded(geo, in, out, out_index);
        return;
      }
      for_each_window_tap(geo, [&](std::int64_t k, std::int64_t at) {
        const T v = in[at];
        if (out_index[k] < 0 || v > out[k] || (std::isnan(v) && !std::isnan(out[k]))) {
          out[k] = v;
          out_index[k] = at;
        }
      });
    });
  });
  if (auto node = record("max_pool2d", y, {x}))
    node->backward = [argmax = Indices(argmax), geo](const Tensor& g, const Node&) {
      return TensorList{scatter_to_argmax(g, argmax, geo)};
    };
  return y;
}

// avg_pool2d: saves nothing (it is linear). Windows always divide by kH * kW: padding
// counts as zeros (count_include_pad).
Tensor avg_pool2d(const Tensor& x, const Pool2dOptions& opts) {
  if (!x.defined()) throw std::invalid_argument("avg_pool2d: the input is undefined");
  const PoolGeometry geo = pool_geometry("avg_pool2d", x.shape(), opts);
  Tensor y = Tensor::empty(geo.out_shape, x.dtype());
  dispatch_dtype(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    const T divisor = static_cast<T>(geo.window());
    for_each_plane(geo, [&](std::int64_t plane) {
      const T* in = src + plane * geo.in_plane();
      T* out = dst + plane * geo.out_plane();
      std::fill(out, out + geo.out_plane(), T(0));
      for_each_window_tap(geo, [&](std::int64_t k, std::int64_t at) { out[k] += in[at]; });
      for (std::int64_t k = 0; k < geo.out_plane(); ++k) out[k] /= divisor;
    });
  });
  if (auto node = record("avg_pool2d", y, {x}))
    node->backward = [geo, opts](const Tensor& g, const Node&) { return TensorList{avg_pool2d_spread(g, geo, opts)}; };
  return y;
}

namespace {

// avg_pool2d's adjoint: dx[at] = sum over windows k containing `at` of g[k] / (kH kW).
// Saves nothing; its own adjoint is avg_pool2d with the same options.
Tensor avg_pool2d_spread(const Tensor& g, const PoolGeometry& geo, const Pool2dOptions& opts) {
  Tensor dx = Tensor::empty(geo.in_shape, g.dtype());
  dispatch_dtype(g.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* src = g.data<T>();
    T* dst = dx.data<T>();
    const T divisor = static_cast<T>(geo.window());
    for_each_plane(geo, [&](std::int64_t plane) {
      const T* in = src + plane * geo.out_plane();
      T* out = dst + plane * geo.in_plane();
      std::fill(out, out + geo.in_plane(), T(0));
      for_each_window_tap(geo, [&](std::int64_t k, std::int64_t at) { out[at] += in[k] / divisor; });
    });
  });
  if (auto node = record("avg_pool2d_backward", dx, {g}))
    node->backward = [opts](const Tensor& gdx, const Node&) { return TensorList{avg_pool2d(gdx, opts)}; };
  return dx;
}

}  // namespace
}  // namespace symgrad
