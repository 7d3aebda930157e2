#pragma once
// Line charts as standalone SVG files, written with no plotting library: training
// curves now, energy-over-time and trajectory plots later. A file holds one or more
// panels stacked vertically; each panel has its own axes, ticks, labels and legend.
//
// Points whose x or y is NaN or infinite (or y <= 0 on a log axis) are skipped and
// break the line there, so a diverged run still plots the part that was finite.
#include <string>
#include <vector>

namespace symgrad::nn {

struct Series {
  std::string label;
  std::vector<double> x, y;  // same length
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool log_y = false;
};

// Evenly spaced "round" tick values (steps of 1, 2 or 5 times a power of ten) covering
// [low, high] with about `target` ticks; the first tick is <= low and the last >= high.
// low == high gets a small range around it.
std::vector<double> nice_ticks(double low, double high, int target = 5);
// The tick label for `value` on an axis whose ticks are `step` apart: enough decimals
// to tell neighbouring ticks apart, and no "-0".
std::string tick_label(double value, double step);

// The SVG document for these panels (throws std::invalid_argument on an empty list or
// a series whose x and y differ in length).
std::string render_svg(const std::vector<Chart>& panels);
// render_svg written to `path` atomically (a temporary file renamed over it), so a
// viewer refreshing the file never sees half a chart.
void write_svg(const std::string& path, const std::vector<Chart>& panels);

}  // namespace symgrad::nn
