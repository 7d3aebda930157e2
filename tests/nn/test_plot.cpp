// The SVG chart writer: ticks, one path per series, NaN and log axes, atomic writes.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "nn/train/plot.hpp"
#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::nn;
using symgrad::testing::count;
using symgrad::testing::path_data;
using symgrad::testing::path_y_values;
using symgrad::testing::read_text;
using symgrad::testing::tags_balanced;
using symgrad::testing::temp_dir;

namespace {
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();
}  // namespace

// ---- SVG charts ----------------------------------------------------------------------

TEST_CASE("nice_ticks covers the range with round steps") {
  const std::vector<double> unit = nice_ticks(0.0, 1.0, 5);
  REQUIRE(unit.size() == 6);
  for (std::size_t i = 0; i < unit.size(); ++i) CHECK(unit[i] == Approx(0.2 * static_cast<double>(i)));
  const std::vector<double> t = nice_ticks(0.13, 0.92, 5);
  CHECK(t.front() <= 0.13);
  CHECK(t.back() >= 0.92);
  CHECK(t[1] - t[0] == Approx(0.2));
  CHECK(nice_ticks(1.0, 10.0, 5) == std::vector<double>{0, 2, 4, 6, 8, 10});
  CHECK(nice_ticks(-3.0, 17.0, 4) == std::vector<double>{-5, 0, 5, 10, 15, 20});
  const std::vector<double> constant = nice_ticks(2.0, 2.0, 5);  // widened around the value
  CHECK(constant.front() < 2.0);
  CHECK(constant.back() > 2.0);
  CHECK(nice_ticks(0.0, 0.0).size() >= 2);
  CHECK_THROWS_WITH(nice_ticks(0.0, kInf), Catch::Contains("not finite"));
  CHECK(tick_label(0.4, 0.2) == "0.4");
  CHECK(tick_label(15, 5) == "15");
  CHECK(tick_label(0.05, 0.05) == "0.05");
  CHECK(tick_label(-0.0, 0.1) == "0");
  CHECK(tick_label(0.30000000000000004, 0.1) == "0.3");
  CHECK(tick_label(2e7, 1e7) == "2e+07");
}

TEST_CASE("render_svg draws one path per series, skips NaN and breaks the line there") {
  Chart loss{"loss", "epoch", "cross-entropy", {}, false};
  loss.series.push_back({"train", {1, 2, 3, 4, 5}, {2.0, 1.0, kNaN, 0.5, 0.4}});
  loss.series.push_back({"test <held out>", {1, 2, 3, 4, 5}, {2.1, 1.2, 0.9, kInf, 0.6}});
  Chart acc{"accuracy", "epoch", "%", {}, false};
  acc.series.push_back({"single", {3}, {0.5}});          // one point: a dot
  acc.series.push_back({"constant", {1, 2, 3}, {7, 7, 7}});
  acc.series.push_back({"nothing", {1, 2}, {kNaN, kNaN}});
  const std::string svg = render_svg({loss, acc});

  CHECK(svg.rfind("<?xml", 0) == 0);
  // The checker itself: it must see a missing or misordered closing tag.
  CHECK_FALSE(tags_balanced("<svg><g></svg>"));
  CHECK_FALSE(tags_balanced("<svg><g><text>a</g></text></svg>"));
  CHECK(tags_balanced("<?xml version=\"1.0\"?><svg><rect width=\"1\"/><g></g></svg>"));
  CHECK(tags_balanced(svg));
  CHECK(count(svg, "<svg") == 1);
  CHECK(count(svg, "<g class=\"panel\">") == 2);
  CHECK(count(svg, "<path") == 5);
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);
  CHECK(svg.find("test &lt;held out&gt;") != std::string::npos);  // escaped label in the legend
  const std::vector<std::string> d = path_data(svg);
  REQUIRE(d.size() == 5);
  CHECK(count(d[0], "M") == 2);  // NaN at x = 3 splits the train curve in two
  CHECK(count(d[0], "L") == 2);
  CHECK(count(d[1], "M") == 2);  // inf at x = 4: the last point stands alone
  CHECK(count(d[1], "L") == 2);
  CHECK(count(d[2], "M") == 1);
  CHECK(count(d[3], "L") == 2);
  CHECK(d[4].empty());
  CHECK(count(svg, "<circle") == 2);  // the single point and the lone point after inf
}

TEST_CASE("render_svg maps points inside the plot area and handles log axes") {
  Chart chart{"energy", "t", "E", {{"E", {0.0, 1.0, 2.0}, {1e-3, 1e-1, 10.0}}}, true};
  const std::string svg = render_svg({chart});
  CHECK(tags_balanced(svg));
  const std::vector<std::string> d = path_data(svg);
  REQUIRE(d.size() == 1);
  // Equal steps in log10(y) (1e-3, 1e-1, 10) are equal steps on screen.
  const std::vector<double> ys = path_y_values(d[0]);
  REQUIRE(ys.size() == 3);
  CHECK(ys[0] - ys[1] == Approx(ys[1] - ys[2]).margin(0.02));
  CHECK(ys[0] > ys[2]);  // larger values are higher up (smaller y)
  CHECK(svg.find(">0.001<") != std::string::npos);
  CHECK(svg.find(">10<") != std::string::npos);
  // Non-positive values cannot sit on a log axis: skipped like NaN.
  Chart bad{"x", "t", "E", {{"E", {0, 1, 2}, {-1.0, 0.0, 5.0}}}, true};
  CHECK(count(path_data(render_svg({bad}))[0], "M") == 1);
}

TEST_CASE("write_svg writes atomically and refuses bad input") {
  const std::string dir = temp_dir("svg");
  const std::string path = dir + "/curves.svg";
  Chart chart{"t", "x", "y", {{"s", {1, 2}, {3, 4}}}, false};
  write_svg(path, {chart});
  CHECK(read_text(path) == render_svg({chart}));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);  // no temporary left behind
  Chart uneven{"t", "x", "y", {{"s", {1, 2}, {3}}}, false};
  CHECK_THROWS_WITH(write_svg(path, {uneven}), Catch::Contains("series 's' of chart 't' has 2 x values but 1 y values"));
  CHECK_THROWS_WITH(write_svg(path, {}), Catch::Contains("no panels"));
  CHECK_THROWS_WITH(write_svg(dir + "/missing/curves.svg", {chart}), Catch::Contains("cannot"));
  std::filesystem::remove_all(dir);
}
