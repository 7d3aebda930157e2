// generator_flow: local operator -> global transformation. A Fashion-MNIST image is moved
// by n explicit Euler steps of u_t = L u, i.e. (1 + tL/n)^n u, for three generators
//   translation  L = d/dx                 (t pixels)
//   rotation     L = -y d/dx + x d/dy     (t radians)
//   dilation     L =  x d/dx + y d/dy     (content scaled by e^-t)
// with central-difference stencils (pde/stencils.hpp), and compared with the exact
// transform exp(tL) u = u o phi_t (bilinear resampling, pde/generator_flow.hpp).
//
//   ./build/examples/generator_flow [--out DIR] [--json PATH] [--item I] [--steps 4,8,...]
//                                    [--accuracy 2|4]
//
// Prints a table of the relative L2 error against n (it must fall as n grows: for small n
// the central-difference Euler step is outside its stable regime, see generator_flow.hpp),
// writes DIR/original.png, and per generator DIR/<name>/exact.png, n<N>.png for each n,
// frame_XXX.png for a subsample of the largest n's steps, and DIR/<name>.gif animating them.
// Returns 1 if some generator's error does not fall from the smallest n to the largest.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/nn.hpp"
#include "nn/train/raster.hpp"
#include "pde/generator_flow.hpp"

using namespace symgrad;

namespace {

struct Options {
  std::string out = "runs/generator_flow", json_path;
  std::int64_t item = 0;
  std::vector<std::int64_t> steps{4, 8, 16, 32, 64, 128, 256};
  int accuracy = 2;
};

std::vector<std::int64_t> parse_steps(const std::string& list) {
  std::vector<std::int64_t> steps;
  std::stringstream in(list);
  for (std::string part; std::getline(in, part, ',');) {
    const std::int64_t n = std::stoll(part);
    if (n < 1) throw std::invalid_argument("--steps: " + part + " is not a positive step count");
    steps.push_back(n);
  }
  if (steps.empty()) throw std::invalid_argument("--steps: empty list");
  return steps;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
    const std::string value = argv[i + 1];
    if (flag == "--out") o.out = value;
    else if (flag == "--json") o.json_path = value;
    else if (flag == "--item") o.item = std::stoll(value);
    else if (flag == "--steps") o.steps = parse_steps(value);
    else if (flag == "--accuracy") o.accuracy = std::stoi(value);
    else throw std::invalid_argument("unknown flag " + flag + " (want --out, --json, --item, --steps, --accuracy)");
  }
  return o;
}

// The test item as a smooth 80 x 80 float64 image in [0, 1]: padded with 6 black pixels
// per side (room to move without leaving the grid), upsampled 2x by bilinear
// interpolation, and blurred with a Gaussian of width 1 pixel. Derivative stencils need
// several pixels across an edge; the raw 28 x 28 item has one.
Tensor prepare_image(const nn::ImageDataset& data, std::int64_t item) {
  const std::int64_t side = data.height, padded = side + 12, big = 2 * padded;
  std::vector<double> small(static_cast<std::size_t>(padded * padded), 0.0);
  for (std::int64_t r = 0; r < side; ++r)
    for (std::int64_t c = 0; c < side; ++c)
      small[static_cast<std::size_t>((r + 6) * padded + c + 6)] =
          data.pixels[static_cast<std::size_t>((item * side + r) * side + c)] / 255.0;
  // Bilinear 2x upsampling: big pixel r sits at small coordinate (r + 0.5) / 2 - 0.5.
  std::vector<double> placed(static_cast<std::size_t>(big * big), 0.0);
  for (std::int64_t r = 0; r < big; ++r)
    for (std::int64_t c = 0; c < big; ++c) {
      const double sr = std::clamp((static_cast<double>(r) + 0.5) / 2 - 0.5, 0.0, static_cast<double>(padded - 1));
      const double sc = std::clamp((static_cast<double>(c) + 0.5) / 2 - 0.5, 0.0, static_cast<double>(padded - 1));
      const auto r0 = static_cast<std::int64_t>(sr), c0 = static_cast<std::int64_t>(sc);
      const std::int64_t r1 = std::min(r0 + 1, padded - 1), c1 = std::min(c0 + 1, padded - 1);
      const double fr = sr - static_cast<double>(r0), fc = sc - static_cast<double>(c0);
      auto at = [&](std::int64_t rr, std::int64_t cc) { return small[static_cast<std::size_t>(rr * padded + cc)]; };
      placed[static_cast<std::size_t>(r * big + c)] =
          (1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c1)) + fr * ((1 - fc) * at(r1, c0) + fc * at(r1, c1));
    }
  std::vector<double> gauss;
  double total = 0.0;
  for (int r = -2; r <= 2; ++r)
    for (int c = -2; c <= 2; ++c) {
      gauss.push_back(std::exp(-0.5 * (r * r + c * c)));
      total += gauss.back();
    }
  for (double& g : gauss) g /= total;
  return pde::apply_stencil(from_vector(placed, {1, 1, big, big}, DType::f64), from_vector(gauss, {5, 5}, DType::f64));
}

struct Generator {
  std::string name, what;
  pde::VectorField field;
  double t;
  Tensor exact;
};

double max_abs_difference(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to_vector(), y = b.to_vector();
  double m = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

std::string frame_name(std::size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "frame_%03zu.png", i);
  return buf;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (o.accuracy != 2 && o.accuracy != 4) throw std::invalid_argument("--accuracy must be 2 or 4");
  const auto start = std::chrono::steady_clock::now();
  const nn::ImageDataset test = nn::load_fashion_mnist(nn::Split::test);
  if (o.item < 0 || o.item >= test.count)
    throw std::invalid_argument("--item " + std::to_string(o.item) + " is not in [0, " + std::to_string(test.count) + ")");
  const std::string label = nn::fashion_mnist_class_names()[static_cast<std::size_t>(test.labels[static_cast<std::size_t>(o.item)])];
  const Tensor image = prepare_image(test, o.item);
  const std::int64_t H = image.size(2), W = image.size(3);
  std::filesystem::create_directories(o.out);
  nn::write_png(o.out + "/original.png", image);

  const double shift = 10.0, angle = M_PI / 6, zoom = std::log(1.25);
  std::vector<Generator> generators{
      {"translation", "d/dx, t = 10 px (content moves left)", pde::translation_field(H, W), shift,
       pde::translate(image, shift, 0.0)},
      {"rotation", "-y d/dx + x d/dy, t = 30 degrees", pde::rotation_field(H, W), angle, pde::rotate(image, angle)},
      {"dilation", "x d/dx + y d/dy, t = -ln 1.25 (content grows 1.25x)", pde::dilation_field(H, W), -zoom,
       pde::dilate(image, -zoom)},
  };
  std::printf("Fashion-MNIST test item %lld (%s), prepared as %lld x %lld; stencil accuracy %d, zero padding\n",
              static_cast<long long>(o.item), label.c_str(), static_cast<long long>(H), static_cast<long long>(W),
              o.accuracy);
  std::printf("relative L2 error of (1 + tL/n)^n u against exp(tL) u (max |error| in brackets)\n\n");
  std::printf("%-12s", "n");
  for (const Generator& g : generators) std::printf("  %-22s", g.name.c_str());
  std::printf("\n");

  pde::FlowOptions flow;
  flow.accuracy = o.accuracy;
  std::vector<std::vector<double>> errors(generators.size()), max_errors(generators.size());
  std::vector<std::vector<Tensor>> frames(generators.size());
  const std::int64_t largest = *std::max_element(o.steps.begin(), o.steps.end());
  for (std::int64_t n : o.steps) {
    std::printf("%-12lld", static_cast<long long>(n));
    for (std::size_t g = 0; g < generators.size(); ++g) {
      const Generator& gen = generators[g];
      std::vector<Tensor> steps;
      const Tensor u = pde::exp_generator(image, gen.field, gen.t, n, flow, n == largest ? &steps : nullptr);
      if (n == largest) frames[g] = steps;
      errors[g].push_back(pde::relative_error(u, gen.exact));
      max_errors[g].push_back(max_abs_difference(u, gen.exact));
      char cell[64];
      std::snprintf(cell, sizeof cell, "%.3e [%.2e]", errors[g].back(), max_errors[g].back());
      std::printf("  %-22s", cell);
      std::fflush(stdout);
      std::filesystem::create_directories(o.out + "/" + gen.name);
      nn::write_png(o.out + "/" + gen.name + "/n" + std::to_string(n) + ".png", u);
    }
    std::printf("\n");
  }

  // Frames: at most 40 of the largest run's steps, evenly spaced, first and last included.
  for (std::size_t g = 0; g < generators.size(); ++g) {
    const std::string dir = o.out + "/" + generators[g].name;
    nn::write_png(dir + "/exact.png", generators[g].exact);
    std::vector<Tensor> picked;
    const std::size_t count = frames[g].size(), wanted = std::min<std::size_t>(count, 40);
    for (std::size_t i = 0; i < wanted; ++i) picked.push_back(frames[g][i * (count - 1) / std::max<std::size_t>(wanted - 1, 1)]);
    for (std::size_t i = 0; i < picked.size(); ++i) nn::write_png(dir + "/" + frame_name(i), picked[i]);
    nn::write_gif(o.out + "/" + generators[g].name + ".gif", picked, 0.0, 1.0, 8);
  }

  bool all_fall = true;
  std::printf("\n");
  for (std::size_t g = 0; g < generators.size(); ++g) {
    const bool falls = errors[g].back() < errors[g].front();
    all_fall = all_fall && falls;
    std::printf("%-12s %s: error %s from n = %lld to n = %lld (%.3g -> %.3g)\n", generators[g].name.c_str(),
                generators[g].what.c_str(), falls ? "falls" : "DOES NOT FALL", static_cast<long long>(o.steps.front()),
                static_cast<long long>(o.steps.back()), errors[g].front(), errors[g].back());
  }

  if (!o.json_path.empty()) {
    nlohmann::ordered_json doc{{"item", o.item}, {"label", label}, {"height", H}, {"width", W},
                               {"accuracy", o.accuracy}, {"padding", "zeros"}, {"generators", nlohmann::ordered_json::array()}};
    for (std::size_t g = 0; g < generators.size(); ++g) {
      nlohmann::ordered_json rows = nlohmann::ordered_json::array();
      for (std::size_t i = 0; i < o.steps.size(); ++i)
        rows.push_back({{"n", o.steps[i]}, {"relative_error", errors[g][i]}, {"max_abs_error", max_errors[g][i]}});
      doc["generators"].push_back(
          {{"name", generators[g].name}, {"generator", generators[g].what}, {"t", generators[g].t}, {"errors", rows}});
    }
    std::ofstream(o.json_path) << doc.dump(2) << "\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("\nwrote %s/{original.png, <generator>/*.png, <generator>.gif}%s in %.1f s\n", o.out.c_str(),
              o.json_path.empty() ? "" : (" and " + o.json_path).c_str(), seconds);
  return all_fall ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "generator_flow: %s\n", e.what());
    return 1;
  }
}
