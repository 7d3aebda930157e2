// Printing tensors the way PyTorch does, so printed values can be compared by eye:
//   tensor([[ 1.0000, -2.5000],
//           [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32)
// The layout rules follow torch's defaults (precision 4, 80 columns, summarise above
// 1000 elements keeping 3 items at each edge). One format is chosen per tensor:
//   - integers ("1.") when every finite nonzero value is whole and they span < 1000x,
//   - scientific ("1.0000e+09") when values span >= 1000x, exceed 1e8, or (for
//     non-integers) fall below 1e-4,
//   - otherwise fixed ("0.1429"),
// and every element is right-aligned to the widest finite nonzero one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "engine/autograd.hpp"
#include "engine/tensor.hpp"

namespace symgrad {
namespace {

constexpr int kPrecision = 4;
constexpr std::int64_t kSummariseAbove = 1000;  // elements
constexpr std::int64_t kEdgeItems = 3;          // kept at each end of a summarised axis
constexpr std::size_t kLineWidth = 80;
constexpr std::size_t kPrefixWidth = 7;         // "tensor("

class ElementFormat {
 public:
  // Chooses the style from the values that will be shown.
  explicit ElementFormat(const std::vector<double>& shown) {
    std::vector<double> magnitudes;
    for (double v : shown)
      if (std::isfinite(v) && v != 0.0) {
        magnitudes.push_back(std::abs(v));
        if (v != std::ceil(v)) integers_ = false;
      }
    if (magnitudes.empty()) return;  // all zero, inf or nan: "0." style
    const auto [lo, hi] = std::minmax_element(magnitudes.begin(), magnitudes.end());
    const bool wide_range = *hi / *lo > 1000.0 || *hi > 1e8;
    scientific_ = integers_ ? wide_range : wide_range || *lo < 1e-4;
    for (double v : shown)
      if (std::isfinite(v) && v != 0.0) width_ = std::max(width_, unpadded(v).size());
  }

  std::size_t width() const { return width_; }

  // The element right-aligned to the common width.
  std::string operator()(double v) const {
    std::string s = unpadded(v);
    return s.size() < width_ ? std::string(width_ - s.size(), ' ') + s : s;
  }

 private:
  std::string unpadded(double v) const {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buffer[64];
    if (scientific_) std::snprintf(buffer, sizeof buffer, "%.*e", kPrecision, v);
    else if (integers_) std::snprintf(buffer, sizeof buffer, "%.0f.", v);
    else std::snprintf(buffer, sizeof buffer, "%.*f", kPrecision, v);
    return buffer;
  }

  bool integers_ = true;
  bool scientific_ = false;
  std::size_t width_ = 1;
};

// The positions shown along an axis of size n: all, or the first and last kEdgeItems.
std::vector<std::int64_t> shown_positions(std::int64_t n, bool summarise) {
  std::vector<std::int64_t> positions;
  for (std::int64_t i = 0; i < n; ++i)
    if (!summarise || n <= 2 * kEdgeItems || i < kEdgeItems || i >= n - kEdgeItems) positions.push_back(i);
  return positions;
}

bool skips_after(std::int64_t i, std::int64_t n, bool summarise) {
  return summarise && n > 2 * kEdgeItems && i == kEdgeItems - 1;
}

struct Printer {
  const std::vector<double>& values;
  const Shape& shape;
  Shape strides;
  bool summarise;

  void collect_shown(std::size_t axis, std::int64_t offset, std::vector<double>& out) const {
    for (std::int64_t i : shown_positions(shape[axis], summarise)) {
      const std::int64_t at = offset + i * strides[axis];
      if (axis + 1 == shape.size()) out.push_back(values[static_cast<std::size_t>(at)]);
      else collect_shown(axis + 1, at, out);
    }
  }

  // The bracketed block for the sub-tensor at `offset` from `axis` on; `indent` is the
  // column of its opening bracket.
  std::string block(const ElementFormat& format, std::size_t axis, std::int64_t offset, std::size_t indent) const {
    const std::int64_t n = shape[axis];
    std::vector<std::string> items;
    for (std::int64_t i : shown_positions(n, summarise)) {
      const std::int64_t at = offset + i * strides[axis];
      items.push_back(axis + 1 == shape.size() ? format(values[static_cast<std::size_t>(at)])
                                               : block(format, axis + 1, at, indent + 1));
      if (skips_after(i, n, summarise)) items.push_back(axis + 1 == shape.size() ? " ..." : "...");
    }
    std::string out = "[";
    if (axis + 1 == shape.size()) {
      // The innermost axis wraps to as many elements as fit in the line width.
      const std::size_t room = kLineWidth > indent ? kLineWidth - indent : 0;
      const std::size_t per_line = std::max<std::size_t>(1, room / (format.width() + 2));
      for (std::size_t k = 0; k < items.size(); ++k) {
        if (k > 0 && k % per_line == 0) out.append(",\n").append(indent + 1, ' ');
        else if (k > 0) out.append(", ");
        out += items[k];
      }
    } else {
      // Blocks of rank r are separated by r - 1 blank-line breaks.
      std::string separator = ",";
      separator.append(shape.size() - axis - 1, '\n').append(indent + 1, ' ');
      for (std::size_t k = 0; k < items.size(); ++k) out += (k > 0 ? separator : "") + items[k];
    }
    return out + "]";
  }
};

// Appends ", suffix" items, moving one to a new line when it would pass the line width.
std::string with_suffixes(std::string body, const std::vector<std::string>& suffixes) {
  const std::size_t newline = body.rfind('\n');
  std::size_t line_length = newline == std::string::npos ? body.size() + 2 : body.size() - newline + 1;
  for (const std::string& suffix : suffixes) {
    if (line_length + suffix.size() + 2 > kLineWidth) {
      body.append(",\n").append(kPrefixWidth, ' ').append(suffix);
      line_length = kPrefixWidth + suffix.size();
    } else {
      body.append(", ").append(suffix);
      line_length += suffix.size() + 2;
    }
  }
  return body + ")";
}

}  // namespace

std::string Tensor::to_string() const {
  if (!defined()) return "tensor(undefined)";
  const std::vector<double> values = to_vector();
  const Shape& s = shape();
  std::string body;
  if (s.empty()) {
    body = "tensor(" + ElementFormat(values)(values[0]);
  } else if (values.empty()) {
    body = "tensor([]";
  } else {
    Printer printer{values, s, contiguous_strides(s), numel() > kSummariseAbove};
    std::vector<double> shown;
    printer.collect_shown(0, 0, shown);
    body = "tensor(" + printer.block(ElementFormat(shown), 0, 0, kPrefixWidth);
  }
  std::vector<std::string> suffixes;
  if (!s.empty()) suffixes.push_back("shape=" + shape_str(s));
  suffixes.push_back(std::string("dtype=") + dtype_name(dtype()));
  if (grad_fn()) suffixes.push_back("grad_fn=<" + grad_fn()->name + ">");
  else if (requires_grad()) suffixes.push_back("requires_grad=True");
  return with_suffixes(std::move(body), suffixes);
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.to_string(); }

}  // namespace symgrad
