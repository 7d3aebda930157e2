#pragma once
// The SIMD inner loops of the depthwise convolution (conv_depthwise_simd.cpp, Highway with
// dynamic dispatch), one overload per dtype. conv_depthwise.cpp lays the planes out in
// zero-bordered scratch and calls these; see its top comment for the layout.
#include <cstdint>

namespace symgrad::kernels {

// A stack of equally shaped planes: plane k of src starts at src + k * src_plane, plane k
// of g at g + k * g_plane; rows of src are src_stride apart, rows of g g_stride apart.
struct PlaneStack {
  std::int64_t planes, rows, cols;
  std::int64_t src_plane, src_stride;
  std::int64_t g_plane, g_stride;
};


// dst[r * dst_stride + c] = init + sum_t taps[t] * src[r * src_stride + c + offsets[t]] for
// r < rows, c < cols. src must stay readable one vector past the last element read. A
// row's partial last vector is stored whole when dst_stride == cols and the extra lanes
// stay inside the rows x cols plane (they land on later rows, stored afterwards).
void correlate_plane(const float* src, std::int64_t src_stride, const std::int64_t* offsets, const float* taps,
                     std::int64_t ntaps, std::int64_t rows, std::int64_t cols, float init, float* dst,
                     std::int64_t dst_stride);
void correlate_plane(const double* src, std::int64_t src_stride, const std::int64_t* offsets, const double* taps,
                     std::int64_t ntaps, std::int64_t rows, std::int64_t cols, double init, double* dst,
                     std::int64_t dst_stride);
// Two correlate_plane calls on the same src (taps0 into dst0, taps1 into dst1) in one pass.
void correlate_plane_pair(const float* src, std::int64_t src_stride, const std::int64_t* offsets, const float* taps0,
                          const float* taps1, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, float init0,
                          float init1, float* dst0, float* dst1, std::int64_t dst_stride);
void correlate_plane_pair(const double* src, std::int64_t src_stride, const std::int64_t* offsets, const double* taps0,
                          const double* taps1, std::int64_t ntaps, std::int64_t rows, std::int64_t cols, double init0,
                          double init1, double* dst0, double* dst1, std::int64_t dst_stride);
// sums[t] += sum over the stack's planes k, rows r and columns c of
// g[k, r, c] * src[k, r, c + offsets[t]]; src readable one vector past the last element read.
void tap_dots_stack(const float* src, const std::int64_t* offsets, std::int64_t ntaps, const float* g,
                    const PlaneStack& s, double* sums);
void tap_dots_stack(const double* src, const std::int64_t* offsets, std::int64_t ntaps, const double* g,
                    const PlaneStack& s, double* sums);
// dst[r * dst_stride + c] = src[r * src_stride + c] for r < rows, c < cols, into scratch:
// each row's last vector is stored whole, with zeros past `cols`.
void copy_rows(const float* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, float* dst,
               std::int64_t dst_stride);
void copy_rows(const double* src, std::int64_t src_stride, std::int64_t rows, std::int64_t cols, double* dst,
               std::int64_t dst_stride);
// src [rows, cols] into a scratch plane of two column phases: column j goes to phase
// (j + left) % 2 at index (j + left) / 2 of row r, which starts at dst + r * dst_stride.
void split_rows_in_two_phases(const float* src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                              std::int64_t phase_length, float* dst, std::int64_t dst_stride);
void split_rows_in_two_phases(const double* src, std::int64_t rows, std::int64_t cols, std::int64_t left,
                              std::int64_t phase_length, double* dst, std::int64_t dst_stride);

}  // namespace symgrad::kernels
