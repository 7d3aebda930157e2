// SympNets (pde/hamiltonian/sympnet.hpp): every module and net is symplectic for random,
// not small, parameters (J^T Omega J = Omega with J from autograd, float64); each module's
// forward matches a plain-loop reference; gradients are checked against finite
// differences (first and second order); the step-size input reduces to the plain net at
// h = 1; a non-symmetric shear, built here from ops, is caught as non-symplectic; a few Adam
// steps reduce the one-step loss on pendulum data; bad inputs throw; save/load round-trips.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "nn/init.hpp"
#include "nn/optim/adam.hpp"
#include "nn/serialize.hpp"
#include "pde/hamiltonian/sympnet.hpp"
#include "support/files.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using namespace symgrad::pde::hamiltonian;
using symgrad::testing::random_input;
using symgrad::testing::require_allclose;

namespace {

// Every parameter (biases included) redrawn from normal(0, std): far from the near-identity
// initialisation, so the symplecticity checks see strongly nonlinear maps.
void randomise(nn::Module& module, double std, std::uint64_t seed) {
  Generator gen(seed);
  for (Tensor& t : module.parameters()) nn::normal_(t, 0.0, std, &gen);
}

struct JacobianCheck {
  double symplecticity = 0;           // max over points of ||J^T Omega J - Omega||_F
  double distance_from_identity = 0;  // max over points of ||J - I||_F
};

// J of `map` at each row of `points` [m, 2n] (float64) by engine jacobian, then
// J^T Omega J - Omega with Omega = [[0, I], [-I, 0]] in plain loops.
JacobianCheck check_jacobians(const std::function<Tensor(const Tensor&)>& map, const Tensor& points) {
  const std::int64_t m = points.size(0), d = points.size(1), n = d / 2;
  auto omega = [n](std::int64_t i, std::int64_t j) {
    if (i < n && j == i + n) return 1.0;
    if (i >= n && j == i - n) return -1.0;
    return 0.0;
  };
  JacobianCheck result;
  for (std::int64_t row = 0; row < m; ++row) {
    const Tensor x = narrow(points, 0, row, 1).detach();
    const std::vector<double> J = jacobian(map, x).to_vector();  // [1, d, 1, d] -> d x d
    REQUIRE(J.size() == static_cast<std::size_t>(d * d));
    auto at = [&](std::int64_t i, std::int64_t j) { return J[static_cast<std::size_t>(i * d + j)]; };
    double residual = 0, from_identity = 0;
    for (std::int64_t i = 0; i < d; ++i)
      for (std::int64_t j = 0; j < d; ++j) {
        double jtoj = 0;  // (J^T Omega J)_ij = sum_kl J_ki Omega_kl J_lj
        for (std::int64_t k = 0; k < d; ++k)
          for (std::int64_t l = 0; l < d; ++l) jtoj += at(k, i) * omega(k, l) * at(l, j);
        residual += std::pow(jtoj - omega(i, j), 2);
        from_identity += std::pow(at(i, j) - (i == j ? 1.0 : 0.0), 2);
      }
    result.symplecticity = std::max(result.symplecticity, std::sqrt(residual));
    result.distance_from_identity = std::max(result.distance_from_identity, std::sqrt(from_identity));
  }
  return result;
}

Tensor random_points(std::int64_t count, std::int64_t dof, std::uint64_t seed) {
  Generator gen(seed);
  return uniform({count, 2 * dof}, -2.0, 2.0, gen, DType::f64);
}

double sigma(SympNetActivation activation, double z) {
  return activation == SympNetActivation::sigmoid ? 1.0 / (1.0 + std::exp(-z)) : std::tanh(z);
}

// Plain-loop references of the three modules, on rows (q, p) with per-row step sizes h.
using Rows = std::vector<std::vector<double>>;

Rows rows_of(const Tensor& x) {
  const std::vector<double> v = x.to_vector();
  const std::size_t cols = static_cast<std::size_t>(x.size(1));
  Rows rows(static_cast<std::size_t>(x.size(0)));
  for (std::size_t r = 0; r < rows.size(); ++r) rows[r].assign(v.begin() + r * cols, v.begin() + (r + 1) * cols);
  return rows;
}

std::vector<double> flat(const Rows& rows) {
  std::vector<double> out;
  for (const auto& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

// Adds h * increment(fixed half) to the moving half of each row.
void reference_shear(Rows& rows, std::size_t n, Shear side, const std::vector<double>& h,
                     const std::function<std::vector<double>(const std::vector<double>&)>& increment) {
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::size_t fixed_at = side == Shear::up ? 0 : n, moving_at = side == Shear::up ? n : 0;
    const std::vector<double> fixed(rows[r].begin() + fixed_at, rows[r].begin() + fixed_at + n);
    const std::vector<double> delta = increment(fixed);
    for (std::size_t i = 0; i < n; ++i) rows[r][moving_at + i] += h[r] * delta[i];
  }
}

std::vector<double> reference_linear(const LinearSympModule& m, const Tensor& x, const std::vector<double>& h) {
  const auto n = static_cast<std::size_t>(m.dof());
  const std::vector<double> S = m.S.to_vector(), b = m.b.to_vector();
  Rows rows = rows_of(x);
  Shear side = m.first();
  for (std::size_t k = 0; k < static_cast<std::size_t>(m.sublayers()); ++k) {
    auto A = [&](std::size_t i, std::size_t j) { return S[k * n * n + i * n + j]; };
    reference_shear(rows, n, side, h, [&](const std::vector<double>& y) {
      std::vector<double> delta(n, 0.0);
      for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < n; ++j) delta[i] += (A(i, j) + A(j, i)) * y[j];
      return delta;
    });
    side = other_side(side);
  }
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (std::size_t i = 0; i < 2 * n; ++i) rows[r][i] += h[r] * b[i];
  return flat(rows);
}

std::vector<double> reference_activation(const ActivationSympModule& m, const Tensor& x, const std::vector<double>& h) {
  const auto n = static_cast<std::size_t>(m.dof());
  const std::vector<double> a = m.a.to_vector();
  Rows rows = rows_of(x);
  reference_shear(rows, n, m.side(), h, [&](const std::vector<double>& y) {
    std::vector<double> delta(n);
    for (std::size_t i = 0; i < n; ++i) delta[i] = a[i] * sigma(m.activation(), y[i]);
    return delta;
  });
  return flat(rows);
}

std::vector<double> reference_gradient(const GradientSympModule& m, const Tensor& x, const std::vector<double>& h) {
  const auto n = static_cast<std::size_t>(m.dof()), width = static_cast<std::size_t>(m.width());
  const std::vector<double> K = m.K.to_vector(), a = m.a.to_vector(), b = m.b.to_vector();
  Rows rows = rows_of(x);
  reference_shear(rows, n, m.side(), h, [&](const std::vector<double>& y) {
    std::vector<double> delta(n, 0.0);
    for (std::size_t j = 0; j < width; ++j) {
      double z = b[j];
      for (std::size_t i = 0; i < n; ++i) z += K[j * n + i] * y[i];
      const double v = a[j] * sigma(m.activation(), z);
      for (std::size_t i = 0; i < n; ++i) delta[i] += K[j * n + i] * v;
    }
    return delta;
  });
  return flat(rows);
}

// The SympNets pendulum H = p^2/2 - cos q: 40 pairs from (q, p) = (0, 1), h = 0.1, by
// leapfrog with 100 substeps (error ~1e-6, ample for "the loss goes down").
void pendulum_pairs(Tensor& x, Tensor& y) {
  const int pairs = 40, substeps = 100;
  const double h = 0.1, dt = h / substeps;
  std::vector<double> xs, ys;
  double q = 0.0, p = 1.0;
  for (int k = 0; k < pairs; ++k) {
    xs.insert(xs.end(), {q, p});
    for (int s = 0; s < substeps; ++s) {
      p -= 0.5 * dt * std::sin(q);
      q += dt * p;
      p -= 0.5 * dt * std::sin(q);
    }
    ys.insert(ys.end(), {q, p});
  }
  x = from_vector(xs, {pairs, 2}, DType::f64);
  y = from_vector(ys, {pairs, 2}, DType::f64);
}

const std::vector<SympNetActivation> kActivations{SympNetActivation::sigmoid, SympNetActivation::tanh};

}  // namespace

TEST_CASE("each module matches its plain-loop reference, with and without a step size", "[sympnet]") {
  const Tensor x = random_points(5, 2, 11);
  const std::vector<double> ones(5, 1.0), steps{0.3, -0.7, 1.9, 0.05, 1.0};
  const Tensor h = from_vector(steps, {5, 1}, DType::f64);
  for (SympNetActivation activation : kActivations)
    for (Shear side : {Shear::up, Shear::low}) {
      INFO(std::string(sympnet_activation_name(activation)) + ", " + shear_name(side));
      LinearSympModule linear(2, 3, side, DType::f64);
      ActivationSympModule act(2, side, activation, DType::f64);
      GradientSympModule gradient(2, 4, side, activation, DType::f64);
      randomise(linear, 0.8, 1);
      randomise(act, 0.8, 2);
      randomise(gradient, 0.8, 3);
      require_allclose(linear.forward(x), reference_linear(linear, x, ones), 1e-13, 1e-13);
      require_allclose(linear.forward(x, h), reference_linear(linear, x, steps), 1e-13, 1e-13);
      require_allclose(act.forward(x), reference_activation(act, x, ones), 1e-13, 1e-13);
      require_allclose(act.forward(x, h), reference_activation(act, x, steps), 1e-13, 1e-13);
      require_allclose(gradient.forward(x), reference_gradient(gradient, x, ones), 1e-13, 1e-13);
      require_allclose(gradient.forward(x, h), reference_gradient(gradient, x, steps), 1e-13, 1e-13);
    }
}

TEST_CASE("every module is symplectic for random parameters, up and low, in float64", "[sympnet]") {
  const Tensor points = random_points(8, 3, 21);
  for (SympNetActivation activation : kActivations)
    for (Shear side : {Shear::up, Shear::low}) {
      INFO(std::string(sympnet_activation_name(activation)) + ", " + shear_name(side));
      // Scales that make each map far from the identity while keeping |J| moderate, so that
      // rounding in J^T Omega J stays below the 1e-13 bound (it grows like |J|^2 eps).
      const std::vector<std::pair<std::shared_ptr<SymplecticModule>, double>> modules{
          {std::make_shared<LinearSympModule>(3, 4, side, DType::f64), 0.3},
          {std::make_shared<ActivationSympModule>(3, side, activation, DType::f64), 1.0},
          {std::make_shared<GradientSympModule>(3, 6, side, activation, DType::f64), 1.0}};
      std::uint64_t seed = 30;
      for (const auto& [module, scale] : modules) {
        INFO(module->type_name());
        randomise(*module, scale, seed++);
        const JacobianCheck plain = check_jacobians([&](const Tensor& y) { return module->forward(y); }, points);
        const Tensor h = scalar(0.37, DType::f64);
        const JacobianCheck stepped = check_jacobians([&](const Tensor& y) { return module->forward(y, h); }, points);
        INFO("errors " << plain.symplecticity << ", " << stepped.symplecticity << "; ||J - I|| "
                       << plain.distance_from_identity);
        CHECK(plain.symplecticity <= 1e-13);
        CHECK(stepped.symplecticity <= 1e-13);
        CHECK(plain.distance_from_identity > 0.3);  // a real shear, not nearly the identity
      }
    }
}

TEST_CASE("LA- and G-SympNets are symplectic for random parameters", "[sympnet]") {
  const Tensor points = random_points(6, 2, 41);
  for (SympNetActivation activation : kActivations) {
    INFO(sympnet_activation_name(activation));
    LASympNet la(LASympNetConfig{.dof = 2, .layers = 3, .sublayers = 3, .activation = activation, .dtype = DType::f64});
    GSympNet g(GSympNetConfig{.dof = 2, .layers = 4, .width = 5, .activation = activation, .dtype = DType::f64});
    randomise(la, 0.3, 42);
    randomise(g, 0.8, 43);
    for (SympNet* net : {static_cast<SympNet*>(&la), static_cast<SympNet*>(&g)}) {
      INFO(net->type_name());
      const JacobianCheck check = check_jacobians([&](const Tensor& y) { return net->forward(y); }, points);
      INFO("error " << check.symplecticity << ", ||J - I|| " << check.distance_from_identity);
      CHECK(check.symplecticity <= 1e-13);
      CHECK(check.distance_from_identity > 0.5);
    }
  }
}

TEST_CASE("a shear by a non-symmetric matrix is caught as not symplectic (negative control)", "[sympnet]") {
  Generator gen(51);
  const Tensor M = normal({2, 2}, 0.0, 1.0, gen, DType::f64);
  const Tensor symmetric = add(M, transpose(M));
  // p <- p + q M: the Jacobian's lower-left block M^T is not symmetric.
  auto shear_by = [](const Tensor& matrix) {
    return [matrix](const Tensor& x) {
      const Tensor q = narrow(x, 1, 0, 2), p = narrow(x, 1, 2, 2);
      return concat({q, add(p, matmul(q, matrix))}, 1);
    };
  };
  const Tensor points = random_points(3, 2, 52);
  CHECK(check_jacobians(shear_by(M), points).symplecticity > 0.1);
  CHECK(check_jacobians(shear_by(symmetric), points).symplecticity <= 1e-13);  // the checker itself is not the culprit
  // Nor is a volume change symplectic: x -> 1.1 x.
  CHECK(check_jacobians([](const Tensor& x) { return x * 1.1; }, points).symplecticity > 0.1);
}

TEST_CASE("gradcheck and gradgradcheck of each module in its input, step size and parameters", "[sympnet]") {
  const Tensor x = random_input({3, 4}, 61);
  const Tensor h = random_input({3, 1}, 62, 0.2, 1.5);
  for (Shear side : {Shear::up, Shear::low}) {
    INFO(shear_name(side));
    LinearSympModule linear(2, 2, side, DType::f64);
    ActivationSympModule act(2, side, SympNetActivation::sigmoid, DType::f64);
    GradientSympModule gradient(2, 3, side, SympNetActivation::tanh, DType::f64);
    randomise(linear, 0.6, 63);
    randomise(act, 0.6, 64);
    randomise(gradient, 0.6, 65);
    auto with_step = [](SymplecticModule& m) { return [&m](const TensorList& in) { return m.forward(in[0], in[1]); }; };
    const TensorList linear_inputs{x, h, linear.S, linear.b};
    const TensorList act_inputs{x, h, act.a};
    const TensorList gradient_inputs{x, h, gradient.K, gradient.a, gradient.b};
    REQUIRE_GRADCHECK(with_step(linear), linear_inputs);
    REQUIRE_GRADGRADCHECK(with_step(linear), linear_inputs);
    REQUIRE_GRADCHECK(with_step(act), act_inputs);
    REQUIRE_GRADGRADCHECK(with_step(act), act_inputs);
    REQUIRE_GRADCHECK(with_step(gradient), gradient_inputs);
    REQUIRE_GRADGRADCHECK(with_step(gradient), gradient_inputs);
    auto plain = [&gradient](const TensorList& in) { return gradient.forward(in[0]); };
    REQUIRE_GRADCHECK(plain, (TensorList{x, gradient.K}));
  }
}

TEST_CASE("the step-size input equals the plain net at h = 1 and scales the increments", "[sympnet]") {
  const Tensor x = random_points(4, 2, 71);
  LASympNet plain(LASympNetConfig{.dof = 2, .layers = 3, .sublayers = 2, .dtype = DType::f64});
  LASympNet stepped(LASympNetConfig{
      .dof = 2, .layers = 3, .sublayers = 2, .takes_step_size = true, .default_step_size = 0.25, .dtype = DType::f64});
  randomise(plain, 0.5, 73);
  randomise(stepped, 0.5, 73);  // the same parameters
  require_allclose(stepped.forward(x, 1.0), plain.forward(x), 0, 1e-15);
  require_allclose(stepped.forward(x, scalar(1.0, DType::f64)), plain.forward(x), 0, 1e-15);
  require_allclose(stepped.forward(x), stepped.forward(x, 0.25), 0, 0);  // forward(x) uses the default h
  require_allclose(stepped.forward(x, 0.0), x, 0, 0);                    // h = 0: the identity map
  // A step size per state equals the states stepped one by one.
  const std::vector<double> steps{0.1, 0.5, -0.3, 2.0};
  const Tensor per_state = stepped.forward(x, from_vector(steps, {4, 1}, DType::f64));
  for (std::int64_t row = 0; row < 4; ++row)
    require_allclose(narrow(per_state, 0, row, 1), stepped.forward(narrow(x, 0, row, 1), steps[row]), 1e-14, 1e-14);
  // Symplectic at every fixed h.
  const Tensor points = random_points(4, 2, 74);
  for (double h : {0.1, 0.75, -1.3}) {
    INFO("h = " << h);
    CHECK(check_jacobians([&](const Tensor& y) { return stepped.forward(y, h); }, points).symplecticity <= 1e-13);
  }
  GSympNet g(GSympNetConfig{.dof = 2, .layers = 3, .width = 4, .takes_step_size = true, .dtype = DType::f64});
  randomise(g, 0.5, 75);
  CHECK(check_jacobians([&](const Tensor& y) { return g.forward(y, 0.6); }, points).symplecticity <= 1e-13);
}

TEST_CASE("nets have the paper's structure, readable names and the paper's initialisation", "[sympnet]") {
  nn::manual_seed(81);
  LASympNet la(LASympNetConfig{});  // the pendulum setting: n 1, 3 layers, 2 sublayers
  std::vector<std::string> names;
  for (const auto& [name, t] : la.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"modules.0.S", "modules.0.b", "modules.1.a", "modules.2.S", "modules.2.b",
                                          "modules.3.a", "modules.4.S", "modules.4.b"});
  CHECK(la.num_parameters() == 3 * (2 + 2) + 2);
  REQUIRE(la.modules().size() == 5);
  CHECK(std::dynamic_pointer_cast<ActivationSympModule>(la.modules()[1])->side() == Shear::up);
  CHECK(std::dynamic_pointer_cast<ActivationSympModule>(la.modules()[3])->side() == Shear::low);

  GSympNet g(GSympNetConfig{});  // n 1, 5 layers, width 30
  CHECK(g.num_parameters() == 5 * 3 * 30);
  CHECK(g.modules().size() == 5);
  CHECK(std::dynamic_pointer_cast<GradientSympModule>(g.modules()[4])->side() == Shear::up);
  // K and a ~ normal(0, 0.01), b = 0: 300 draws give the std to about 4%.
  double sum_squares = 0;
  std::int64_t count = 0;
  for (const auto& module : g.modules()) {
    const auto& gradient = dynamic_cast<const GradientSympModule&>(*module);
    for (const Tensor& t : {gradient.K, gradient.a})
      for (double v : t.to_vector()) {
        sum_squares += v * v;
        ++count;
      }
    for (double v : gradient.b.to_vector()) CHECK(v == 0.0);
  }
  const double std = std::sqrt(sum_squares / static_cast<double>(count));
  CHECK(std > 0.008);
  CHECK(std < 0.012);
  CHECK(la.dtype() == DType::f32);
  // The net (which splits x once and moves the halves) is the composition of its modules.
  const Tensor x = to_dtype(random_points(3, 1, 82), DType::f32);
  randomise(la, 0.5, 83);
  Tensor composed = x.detach();
  for (const auto& module : la.modules()) composed = module->forward(composed);
  require_allclose(la.forward(x), composed, 0, 0);
  CHECK(g.summary().find("GradientSympModule") != std::string::npos);
}

TEST_CASE("a few Adam steps reduce the one-step loss on pendulum data", "[sympnet]") {
  Tensor x, y;
  pendulum_pairs(x, y);
  nn::manual_seed(91);
  LASympNet la(LASympNetConfig{.dtype = DType::f64});
  GSympNet g(GSympNetConfig{.dtype = DType::f64});
  for (SympNet* net : {static_cast<SympNet*>(&la), static_cast<SympNet*>(&g)}) {
    INFO(net->type_name());
    nn::Adam adam(net->parameters(), {.lr = 1e-3});
    auto loss_now = [&] { return mean(square(sub(net->forward(x), y))); };
    const double before = loss_now().item();
    for (int step = 0; step < 30; ++step) {
      adam.zero_grad();
      backward(loss_now());
      adam.step();
    }
    const double after = loss_now().item();
    CHECK(after < 0.8 * before);
  }
}

TEST_CASE("saved SympNets load back exactly", "[sympnet]") {
  const symgrad::testing::TempDir dir("sympnet");
  const Tensor x = random_points(5, 1, 101);
  nn::manual_seed(102);
  LASympNet original(LASympNetConfig{.dtype = DType::f64});
  randomise(original, 0.5, 103);
  nn::save_state(original, dir.file("la.json"));
  nn::manual_seed(104);
  LASympNet restored(LASympNetConfig{.dtype = DType::f64});
  CHECK(restored.forward(x).to_vector() != original.forward(x).to_vector());
  nn::load_state(restored, dir.file("la.json"));
  require_allclose(restored.forward(x), original.forward(x), 0, 0);

  GSympNet g(GSympNetConfig{.layers = 3, .width = 4, .dtype = DType::f64});
  randomise(g, 0.5, 105);
  nn::save_state(g, dir.file("g.cbor"));
  GSympNet g_restored(GSympNetConfig{.layers = 3, .width = 4, .dtype = DType::f64});
  nn::load_state(g_restored, dir.file("g.cbor"));
  require_allclose(g_restored.forward(x), g.forward(x), 0, 0);
  // A net of another shape is refused.
  GSympNet wider(GSympNetConfig{.layers = 3, .width = 5, .dtype = DType::f64});
  CHECK_THROWS(nn::load_state(wider, dir.file("g.cbor")));
}

TEST_CASE("bad shapes, dtypes and settings throw errors that name the problem", "[sympnet]") {
  using Catch::Matchers::Contains;
  LinearSympModule linear(1, 2, Shear::up, DType::f64);
  ActivationSympModule act(2, Shear::low, SympNetActivation::sigmoid, DType::f64);
  GradientSympModule gradient(1, 3, Shear::up, SympNetActivation::sigmoid, DType::f64);
  CHECK_THROWS_WITH(linear.forward(zeros({4, 3}, DType::f64)),
                    Contains("LinearSympModule.forward") && Contains("[4, 3]") && Contains("[batch, 2]"));
  CHECK_THROWS_WITH(act.forward(zeros({4, 2}, DType::f64)),
                    Contains("ActivationSympModule.forward") && Contains("[batch, 4]"));
  CHECK_THROWS_WITH(gradient.forward(zeros({2}, DType::f64)),
                    Contains("GradientSympModule.forward") && Contains("[2]"));
  CHECK_THROWS_WITH(gradient.forward(zeros({4, 2}, DType::f32)), Contains("float32") && Contains("float64"));
  CHECK_THROWS_WITH(gradient.forward(Tensor()), Contains("undefined"));
  CHECK_THROWS_WITH(linear.forward(zeros({4, 2}, DType::f64), zeros({4, 2}, DType::f64)),
                    Contains("step size h [4, 2]") && Contains("[4, 1]"));
  CHECK_THROWS_WITH(linear.forward(zeros({4, 2}, DType::f64), zeros({3, 1}, DType::f64)), Contains("h [3, 1]"));
  CHECK_THROWS_WITH(linear.forward(zeros({4, 2}, DType::f64), scalar(0.1, DType::f32)), Contains("float32"));

  LASympNet plain(LASympNetConfig{.dtype = DType::f64});
  CHECK_THROWS_WITH(plain.forward(zeros({4, 2}, DType::f64), 0.1),
                    Contains("LASympNet") && Contains("takes_step_size"));
  CHECK_THROWS_WITH(plain.forward(zeros({4, 3}, DType::f64)), Contains("[4, 3]"));

  CHECK_THROWS_WITH(LinearSympModule(1, 0), Contains("LinearSympModule") && Contains("sublayers 0"));
  CHECK_THROWS_WITH(GradientSympModule(1, 0, Shear::up), Contains("GradientSympModule") && Contains("width 0"));
  CHECK_THROWS_WITH(ActivationSympModule(0, Shear::up), Contains("ActivationSympModule") && Contains("dof 0"));
  CHECK_THROWS_WITH(LASympNet(LASympNetConfig{.layers = 0}), Contains("LASympNet") && Contains("layers 0"));
  CHECK_THROWS_WITH(GSympNet(GSympNetConfig{.dof = -1}), Contains("GSympNet") && Contains("dof -1"));
  CHECK_THROWS_WITH(GSympNet(GSympNetConfig{.init_std = -1}), Contains("init_std"));
  CHECK_THROWS_WITH(sympnet_activation_from_name("relu"), Contains("relu") && Contains("sigmoid, tanh"));
  CHECK(sympnet_activation_from_name("tanh") == SympNetActivation::tanh);
}
