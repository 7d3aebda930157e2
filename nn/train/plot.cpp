#include "nn/train/plot.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>

namespace symgrad::nn {

// ---- ticks ---------------------------------------------------------------------------

std::vector<double> nice_ticks(double low, double high, int target) {
  if (!std::isfinite(low) || !std::isfinite(high))
    throw std::invalid_argument("nice_ticks: range [" + std::to_string(low) + ", " + std::to_string(high) +
                                "] is not finite");
  if (target < 2) target = 2;
  if (low > high) std::swap(low, high);
  // A constant (or numerically constant) range is widened around its value.
  const double scale = std::max(std::abs(low), std::abs(high));
  if (high - low <= 1e-12 * scale || high == low) {
    const double pad = scale > 0.0 ? 0.05 * scale : 1.0;
    low -= pad;
    high += pad;
  }
  const double rough = (high - low) / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(rough)));
  // The slack keeps 0.2 / 0.1 = 2.0000000000000004 a step of 2, not 5.
  const double fraction = rough / magnitude * (1.0 - 1e-9);
  const double step = (fraction <= 1.0 ? 1.0 : fraction <= 2.0 ? 2.0 : fraction <= 5.0 ? 5.0 : 10.0) * magnitude;
  const double first = std::floor(low / step), last = std::ceil(high / step);
  std::vector<double> ticks;
  for (double k = first; k <= last + 0.5; k += 1.0) {
    double value = k * step;  // multiplying (not accumulating) keeps 0.1 * 3 from drifting
    if (std::abs(value) < 1e-9 * step) value = 0.0;
    ticks.push_back(value);
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  if (value == 0.0) return "0";
  char text[48];
  const double size = std::abs(value);
  if (size >= 1e6 || size < 1e-4) {
    std::snprintf(text, sizeof text, "%.3g", value);
    return text;
  }
  const double decimals = std::ceil(-std::log10(std::abs(step)) - 1e-9);
  std::snprintf(text, sizeof text, "%.*f", static_cast<int>(std::clamp(decimals, 0.0, 10.0)), value);
  return text;
}

namespace {

// ---- SVG helpers ---------------------------------------------------------------------

constexpr double kWidth = 760, kPanelHeight = 380;
constexpr double kLeft = 76, kRight = 170, kTop = 40, kBottom = 54;  // margins of one panel
// Ten distinguishable colours, cycled (the widely used "category10" palette).
constexpr const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", v);
  return text;
}

std::string text_element(double x, double y, const std::string& content, const std::string& attributes) {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" " + attributes + ">" + escape_xml(content) +
         "</text>\n";
}

std::string line_element(double x1, double y1, double x2, double y2, const std::string& attributes) {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" + num(y2) +
         "\" " + attributes + "/>\n";
}

// One axis: the value range it shows and its ticks. On a log axis positions are
// computed from log10 of the value.
struct Axis {
  std::vector<double> ticks;
  double low = 0.0, high = 1.0;  // in axis units (log10 of the value on a log axis)
  bool log = false;
  double step = 1.0;             // the tick spacing the labels are formatted for

  double unit(double value) const { return log ? std::log10(value) : value; }
  double fraction(double value) const { return (unit(value) - low) / (high - low); }
};

Axis linear_axis(double min, double max, int target) {
  Axis axis;
  axis.ticks = nice_ticks(min, max, target);
  axis.low = axis.ticks.front();
  axis.high = axis.ticks.back();
  axis.step = axis.ticks.size() > 1 ? axis.ticks[1] - axis.ticks[0] : 1.0;
  return axis;
}

// Powers of ten covering [min, max] (min > 0), every k-th decade if there are many;
// within a single decade, 1-2-5 steps as well.
Axis log_axis(double min, double max) {
  Axis axis;
  axis.log = true;
  double low = std::floor(std::log10(min)), high = std::ceil(std::log10(max));
  if (high <= low) high = low + 1.0;
  const double every = std::max(1.0, std::ceil((high - low) / 8.0));
  high = low + every * std::ceil((high - low) / every);
  axis.low = low;
  axis.high = high;
  for (double e = low; e <= high + 0.5; e += every) {
    const double power = std::pow(10.0, e);
    axis.ticks.push_back(power);
    if (high - low == 1.0 && e < high) {
      axis.ticks.push_back(2.0 * power);
      axis.ticks.push_back(5.0 * power);
    }
  }
  std::sort(axis.ticks.begin(), axis.ticks.end());
  return axis;
}

std::string log_tick_label(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

bool drawable(double x, double y, bool log_y) {
  return std::isfinite(x) && std::isfinite(y) && (!log_y || y > 0.0);
}

void check_series(const Chart& chart) {
  for (const Series& s : chart.series)
    if (s.x.size() != s.y.size())
      throw std::invalid_argument("write_svg: series '" + s.label + "' of chart '" + chart.title + "' has " +
                                  std::to_string(s.x.size()) + " x values but " + std::to_string(s.y.size()) +
                                  " y values");
}

// One panel whose top edge is at y = top.
std::string render_panel(const Chart& chart, double top) {
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = top + kTop, y1 = top + kPanelHeight - kBottom;

  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  for (const Series& s : chart.series)
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (drawable(s.x[i], s.y[i], chart.log_y)) {
        xmin = std::min(xmin, s.x[i]);
        xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]);
        ymax = std::max(ymax, s.y[i]);
      }
  const bool has_data = xmin <= xmax;
  if (!has_data) {
    xmin = 0.0;
    xmax = 1.0;
    ymin = chart.log_y ? 1.0 : 0.0;
    ymax = chart.log_y ? 10.0 : 1.0;
  }
  const Axis xaxis = linear_axis(xmin, xmax, 6);
  const Axis yaxis = chart.log_y ? log_axis(ymin, ymax) : linear_axis(ymin, ymax, 5);
  auto px = [&](double x) { return x0 + xaxis.fraction(x) * (x1 - x0); };
  auto py = [&](double y) { return y1 - yaxis.fraction(y) * (y1 - y0); };

  std::string svg = "<g class=\"panel\">\n";
  svg += text_element((x0 + x1) / 2, top + 24, chart.title,
                      "text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\"");

  // Grid and tick labels.
  for (double t : xaxis.ticks) {
    svg += line_element(px(t), y0, px(t), y1, "stroke=\"#e6e6e6\"");
    svg += text_element(px(t), y1 + 16, tick_label(t, xaxis.step), "text-anchor=\"middle\"");
  }
  for (double t : yaxis.ticks) {
    svg += line_element(x0, py(t), x1, py(t), "stroke=\"#e6e6e6\"");
    svg += text_element(x0 - 6, py(t) + 4, chart.log_y ? log_tick_label(t) : tick_label(t, yaxis.step),
                        "text-anchor=\"end\"");
  }
  svg += "<rect x=\"" + num(x0) + "\" y=\"" + num(y0) + "\" width=\"" + num(x1 - x0) + "\" height=\"" +
         num(y1 - y0) + "\" fill=\"none\" stroke=\"#444444\"/>\n";
  svg += text_element((x0 + x1) / 2, y1 + 40, chart.x_label, "text-anchor=\"middle\"");
  const double label_x = x0 - 56, label_y = (y0 + y1) / 2;
  svg += text_element(label_x, label_y, chart.y_label,
                      "text-anchor=\"middle\" transform=\"rotate(-90 " + num(label_x) + " " + num(label_y) + ")\"");
  if (!has_data)
    svg += text_element((x0 + x1) / 2, (y0 + y1) / 2, "no finite data", "text-anchor=\"middle\" fill=\"#888888\"");

  // One <path> per series; an undrawable point ends the current piece of line, and a
  // point with no drawable neighbour gets a dot (a path of one point draws nothing).
  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const Series& s = chart.series[k];
    const std::string color = kColors[k % std::size(kColors)];
    std::string d, dots;
    bool pen_down = false;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!drawable(s.x[i], s.y[i], chart.log_y)) {
        pen_down = false;
        continue;
      }
      const bool next_drawable = i + 1 < s.x.size() && drawable(s.x[i + 1], s.y[i + 1], chart.log_y);
      if (!pen_down && !next_drawable)
        dots += "<circle cx=\"" + num(px(s.x[i])) + "\" cy=\"" + num(py(s.y[i])) + "\" r=\"2.5\" fill=\"" +
                color + "\"/>\n";
      if (!d.empty()) d += ' ';
      d += pen_down ? 'L' : 'M';
      d += num(px(s.x[i]));
      d += ',';
      d += num(py(s.y[i]));
      pen_down = true;
    }
    svg += "<path class=\"series\" d=\"" + d + "\" fill=\"none\" stroke=\"" + color +
           "\" stroke-width=\"1.8\" stroke-linejoin=\"round\"><title>" + escape_xml(s.label) + "</title></path>\n";
    svg += dots;
    // Legend entry, right of the plot.
    const double ly = y0 + 12 + 20 * static_cast<double>(k);
    svg += line_element(x1 + 12, ly, x1 + 36, ly, "stroke=\"" + color + "\" stroke-width=\"2.5\"");
    svg += text_element(x1 + 42, ly + 4, s.label, "");
  }
  return svg + "</g>\n";
}

}  // namespace

std::string render_svg(const std::vector<Chart>& panels) {
  if (panels.empty()) throw std::invalid_argument("write_svg: no panels to draw");
  for (const Chart& chart : panels) check_series(chart);
  const double height = kPanelHeight * static_cast<double>(panels.size());
  std::string svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" + num(height) +
         "\" viewBox=\"0 0 " + num(kWidth) + " " + num(height) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (std::size_t i = 0; i < panels.size(); ++i)
    svg += render_panel(panels[i], kPanelHeight * static_cast<double>(i));
  return svg + "</svg>\n";
}

void write_svg(const std::string& path, const std::vector<Chart>& panels) {
  const std::string svg = render_svg(panels);
  // The pid keeps two processes writing the same chart from sharing a temporary file.
  const std::string temp = path + ".tmp" + std::to_string(static_cast<long>(getpid()));
  {
    std::ofstream out(temp, std::ios::out | std::ios::trunc | std::ios::binary);
    out << svg;
    if (!out.flush()) {
      std::remove(temp.c_str());
      throw std::runtime_error("write_svg: cannot write '" + temp + "'");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw std::runtime_error("write_svg: cannot rename '" + temp + "' to '" + path + "'");
  }
}

}  // namespace symgrad::nn
