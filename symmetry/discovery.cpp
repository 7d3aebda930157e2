// Symmetry discovery: rows <e_k, M> from one backward pass each, their null space by SVD,
// and the rank of the orbit tangent on that null space.
#include "symmetry/discovery.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>

#include "nn/layers/conv2d.hpp"
#include "nn/layers/linear.hpp"
#include "symmetry/weight_symmetry.hpp"

extern "C" {
// LAPACK, column-major (OpenBLAS exports it).
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
             const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork, int* info);
}

namespace symgrad::symmetry {

namespace {

// ---- SVD of a row-major matrix --------------------------------------------------------

struct RightSvd {
  std::vector<double> values;  // descending, min(rows, cols) of them
  // With vectors: every right singular vector, v[k * cols + i] = component i of the k-th
  // (in the order of `values`, then a basis of what is left when rows < cols).
  std::vector<double> v;
};

// A [rows, cols] row-major is A^T [cols, rows] column-major: LAPACK's U of A^T is our V.
// Fewer rows than columns are padded with zero rows, so that U is square and carries the
// whole null space; zero rows add no singular value but zeros.
RightSvd right_svd(std::vector<double> a, std::int64_t rows, std::int64_t cols, bool want_vectors) {
  RightSvd out;
  if (rows == 0 || cols == 0) return out;
  const std::int64_t padded_rows = want_vectors ? std::max(rows, cols) : rows;
  if (padded_rows > std::numeric_limits<int>::max() / cols)
    throw std::invalid_argument("discover_symmetries: a " + std::to_string(rows) + " x " + std::to_string(cols) +
                                " row matrix is too large for LAPACK");
  a.resize(static_cast<std::size_t>(padded_rows * cols), 0.0);
  for (double x : a)
    if (!std::isfinite(x)) throw std::invalid_argument("discover_symmetries: the rows have non-finite entries");
  const int m = static_cast<int>(cols), n = static_cast<int>(padded_rows), lda = m;
  const int k = std::min(m, n);
  out.values.resize(static_cast<std::size_t>(k));
  std::vector<double> u(want_vectors ? static_cast<std::size_t>(m) * k : 1);
  std::vector<double> vt(want_vectors ? static_cast<std::size_t>(k) * n : 1);
  const int ldu = want_vectors ? m : 1, ldvt = want_vectors ? k : 1;
  std::vector<int> iwork(8 * static_cast<std::size_t>(k));
  const char jobz = want_vectors ? 'S' : 'N';
  int info = 0, lwork = -1;
  double query = 0;
  dgesdd_(&jobz, &m, &n, a.data(), &lda, out.values.data(), u.data(), &ldu, vt.data(), &ldvt, &query, &lwork,
          iwork.data(), &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<std::size_t>(std::max(lwork, 1)));
  dgesdd_(&jobz, &m, &n, a.data(), &lda, out.values.data(), u.data(), &ldu, vt.data(), &ldvt, work.data(), &lwork,
          iwork.data(), &info);
  if (info != 0)
    throw std::runtime_error("discover_symmetries: LAPACK dgesdd failed (info = " + std::to_string(info) + ")");
  out.values.resize(static_cast<std::size_t>(std::min(rows, cols)));
  if (want_vectors) {
    out.v.resize(static_cast<std::size_t>(cols) * cols);
    for (std::int64_t j = 0; j < cols; ++j)  // column j of LAPACK's U, [cols, cols]
      for (std::int64_t i = 0; i < cols; ++i) out.v[j * cols + i] = u[i + j * m];
  }
  return out;
}

// ---- the interface's parameters ---------------------------------------------------------

struct BoundAxis {
  std::string parameter;
  std::int64_t axis = 0;  // non-negative
  Tensor value;           // the parameter (shared handle)
  bool producer = true;
};

std::vector<BoundAxis> bind_axes(const nn::Module& model, const Interface& interface) {
  std::map<std::string, Tensor> params;
  for (const auto& [name, t] : model.named_parameters()) params[name] = t;
  const std::string who = "discover_symmetries: interface '" + interface.name + "'";
  if (interface.channels < 1)
    throw std::invalid_argument(who + " has " + std::to_string(interface.channels) + " channels (needs >= 1)");
  if (interface.producers.empty() && interface.consumers.empty())
    throw std::invalid_argument(who + " has no producers and no consumers");
  std::vector<BoundAxis> bound;
  const auto bind = [&](const ParameterAxis& a, bool producer) {
    const auto it = params.find(a.parameter);
    if (it == params.end())
      throw std::invalid_argument(who + ": the model has no parameter '" + a.parameter + "'");
    const Tensor& p = it->second;
    const std::int64_t axis = a.axis < 0 ? a.axis + p.dim() : a.axis;
    if (axis < 0 || axis >= p.dim() || p.size(axis) != interface.channels)
      throw std::invalid_argument(who + ": parameter '" + a.parameter + "' " + shape_str(p.shape()) + " has no axis " +
                                  std::to_string(a.axis) + " of length " + std::to_string(interface.channels));
    bound.push_back({a.parameter, axis, p, producer});
  };
  for (const ParameterAxis& a : interface.producers) bind(a, true);
  for (const ParameterAxis& a : interface.consumers) bind(a, false);
  return bound;
}

void check_candidate(const Interface& interface, const LieAlgebra& candidate) {
  if (candidate.n() != interface.channels)
    throw std::invalid_argument("discover_symmetries: candidate " + candidate.name() + " acts on " +
                                std::to_string(candidate.n()) + " channels, interface '" + interface.name +
                                "' has " + std::to_string(interface.channels));
}

double frobenius(const Tensor& x) { return std::sqrt(sum(square(x)).item()); }

nlohmann::json axes_to_json(const std::vector<ParameterAxis>& axes) {
  nlohmann::json out = nlohmann::json::array();
  for (const ParameterAxis& a : axes) out.push_back({{"parameter", a.parameter}, {"axis", a.axis}});
  return out;
}

std::vector<ParameterAxis> axes_from_json(const nlohmann::json& list) {
  std::vector<ParameterAxis> out;
  for (const auto& a : list) out.push_back({a.at("parameter").get<std::string>(), a.at("axis").get<std::int64_t>()});
  return out;
}

}  // namespace

// ---- the rows ---------------------------------------------------------------------------

namespace {

// The rows, and the size they would have if nothing cancelled: sqrt(sum_r b_r^2) with
// b_r = sum_a ||G_a|| ||P_a|| >= |<xi, M_r>| for ||xi||_F = 1. The rank is decided against
// it, so an exact symmetry of the whole candidate (every row zero up to rounding) counts
// as such.
struct Rows {
  Tensor matrix;  // [rows, dim] float64
  double scale = 0;
};

Rows build_rows(nn::Module& model, const Tensor& inputs, const Interface& interface, const LieAlgebra& candidate,
                std::int64_t rows, std::uint64_t seed,
                const std::function<void(std::int64_t, std::int64_t)>& progress = {}) {
  check_candidate(interface, candidate);
  if (rows < 1)
    throw std::invalid_argument("discover_symmetries: rows = " + std::to_string(rows) + " must be >= 1");
  const std::vector<BoundAxis> axes = bind_axes(model, interface);
  const std::int64_t n = interface.channels, dim = candidate.dim();
  std::vector<Tensor> unfolded;  // P_a, [n, rest] float64
  TensorList parameters;
  for (const BoundAxis& a : axes) {
    NoGradGuard no_grad;
    unfolded.push_back(to_dtype(unfold_axis(a.value, a.axis), DType::f64));
    parameters.push_back(a.value);
  }
  const Tensor basis = reshape(candidate.basis(), {dim, n * n});  // [dim, n^2] float64

  // One sample at a time in eval mode: a row's backward pass then costs one sample, not
  // the batch, and since the rows of one sample span at most its number of outputs, the
  // rows come from as many samples as they need (a GL(64) stream needs thousands). In
  // training mode BatchNorm couples the samples: the whole batch is one chunk.
  const std::int64_t samples = inputs.dim() > 0 ? inputs.size(0) : 1;
  const std::int64_t chunk = model.is_training() || inputs.dim() == 0 ? samples : 1;
  GradModeGuard grad_on(true);
  Generator gen(seed);
  std::vector<double> values(static_cast<std::size_t>(rows * dim));
  double scale_squared = 0;
  std::int64_t r = 0;
  for (std::int64_t start = 0; r < rows; start = (start + chunk) % samples) {
    const Tensor outputs = model(chunk == samples ? inputs : narrow(inputs, 0, start, chunk));
    const std::int64_t chunk_rows = std::min<std::int64_t>(std::max<std::int64_t>(outputs.numel(), 1), rows - r);
    for (std::int64_t k = 0; k < chunk_rows; ++k, ++r) {
      // A random unit functional of the chunk's outputs.
      Tensor functional = randn(outputs.shape(), gen, DType::f64);
      functional = functional * scalar(1.0 / frobenius(functional), DType::f64);
      const TensorList grads = grad({outputs}, parameters, {to_dtype(functional, outputs.dtype())},
                                    {.retain_graph = true, .allow_unused = true});
      NoGradGuard no_grad;
      // M = sum_prod G_a P_a^T - sum_cons C_a G_a^T: <xi, M> is the derivative along xi.
      Tensor m = zeros({n, n}, DType::f64);
      double bound = 0;
      for (std::size_t a = 0; a < axes.size(); ++a) {
        if (!grads[a].defined()) continue;  // the output does not depend on this parameter
        const Tensor g = to_dtype(unfold_axis(grads[a], axes[a].axis), DType::f64);
        m = axes[a].producer ? m + matmul(g, unfolded[a], false, true) : m - matmul(unfolded[a], g, false, true);
        bound += frobenius(g) * frobenius(unfolded[a]);
      }
      scale_squared += bound * bound;
      const std::vector<double> row = matmul(basis, reshape(m, {n * n, 1})).to_vector();
      std::copy(row.begin(), row.end(), values.begin() + r * dim);
      if (progress && ((r + 1) % 16 == 0 || r + 1 == rows)) progress(r + 1, rows);
    }
  }
  return {from_vector(values, {rows, dim}, DType::f64), std::sqrt(scale_squared)};
}

}  // namespace

Tensor symmetry_constraint_rows(nn::Module& model, const Tensor& inputs, const Interface& interface,
                                const LieAlgebra& candidate, std::int64_t rows, std::uint64_t seed) {
  return build_rows(model, inputs, interface, candidate, rows, seed).matrix;
}

// ---- the null space ---------------------------------------------------------------------

DiscoveryResult discover_symmetries(nn::Module& model, const Tensor& inputs, const Interface& interface,
                                    const LieAlgebra& candidate, const DiscoveryOptions& options) {
  const std::int64_t n = interface.channels, dim = candidate.dim();
  if (options.rows < 0)
    throw std::invalid_argument("discover_symmetries: rows = " + std::to_string(options.rows) +
                                " must be >= 1 (or 0 for twice the candidate's dimension)");
  const std::int64_t rows = options.rows > 0 ? options.rows : 2 * dim;
  const Rows row_data = build_rows(model, inputs, interface, candidate, rows, options.seed, options.progress);
  const bool f64 = model.dtype() == DType::f64;
  const double tolerance = options.tolerance > 0 ? options.tolerance : (f64 ? 1e-9 : 1e-4);
  const double tangent_tolerance = options.tangent_tolerance > 0 ? options.tangent_tolerance : tolerance;

  DiscoveryResult result;
  result.interface = interface;
  result.candidate = candidate.name();
  result.candidate_dim = dim;
  result.rows = rows;

  const RightSvd svd = right_svd(row_data.matrix.to_vector(), rows, dim, true);
  result.singular_values = svd.values;
  result.singular_values.resize(static_cast<std::size_t>(dim), 0.0);
  result.row_scale = row_data.scale;
  while (result.rank < dim && result.singular_values[result.rank] > tolerance * row_data.scale) ++result.rank;
  result.null_dim = dim - result.rank;
  result.smallest_kept = result.rank > 0 ? result.singular_values[result.rank - 1] : 0.0;
  result.largest_dropped = result.null_dim > 0 ? result.singular_values[result.rank] : 0.0;
  // With nothing kept, the gap is measured from the rows' scale.
  const double above = result.rank > 0 ? result.smallest_kept : row_data.scale;
  result.gap = result.largest_dropped > 0 ? above / result.largest_dropped : std::numeric_limits<double>::infinity();

  // The null space: the right singular vectors past the rank.
  const std::vector<double> null_values(svd.v.begin() + result.rank * dim, svd.v.end());
  result.null_coordinates = from_vector(null_values, {result.null_dim, dim}, DType::f64);
  result.null_matrices =
      reshape(matmul(result.null_coordinates, reshape(candidate.basis(), {dim, n * n})), {result.null_dim, n, n});

  // The tangent xi . theta of each null direction, [null_dim, sum of parameter sizes]:
  // xi P_a for producers, -xi^T C_a for consumers.
  const std::vector<BoundAxis> axes = bind_axes(model, interface);
  double weight_norm_squared = 0;
  std::vector<Tensor> tangent_parts;
  {
    NoGradGuard no_grad;
    for (const BoundAxis& a : axes) {
      const Tensor p = to_dtype(unfold_axis(a.value, a.axis), DType::f64);
      const double norm = frobenius(p);
      weight_norm_squared += norm * norm;
      if (norm == 0)
        result.warnings.push_back((a.producer ? "producer '" : "consumer '") + a.parameter +
                                  "' is all zero: degenerate weights (e.g. a zero-initialised last BN) make "
                                  "directions that act on it alone trivial symmetries");
      if (result.null_dim == 0) continue;
      const Tensor moved = a.producer ? matmul(result.null_matrices, p)
                                      : neg(matmul(transpose(result.null_matrices, 1, 2), p));
      tangent_parts.push_back(reshape(moved, {result.null_dim, -1}));
    }
  }
  if (result.null_dim > 0) {
    const Tensor tangents = concat(tangent_parts, 1);
    result.tangent_singular_values = right_svd(tangents.to_vector(), result.null_dim, tangents.size(1), false).values;
    const double threshold = tangent_tolerance * std::sqrt(weight_norm_squared);
    for (double s : result.tangent_singular_values)
      if (s > threshold) ++result.moving_dim;
  }

  // What the count means.
  std::ostringstream note;
  if (rows < dim) {
    note << rows << " rows < candidate dimension " << dim << ": at least " << dim - rows
         << " null directions come from counting alone";
    result.warnings.push_back(note.str());
  } else if (result.rank == std::min(rows, dim) && result.null_dim > 0) {
    note << "all " << rows << " rows are independent: the null dimension " << result.null_dim
         << " is an upper bound; use more rows";
    result.warnings.push_back(note.str());
  }
  if (result.null_dim > 0 && result.rank > 0 && result.gap < 1e3) {
    std::ostringstream gap;
    gap << "singular-value gap at the cut is only " << result.gap << " (" << result.smallest_kept << " kept, "
        << result.largest_dropped << " dropped): the dimension depends on the tolerance";
    result.warnings.push_back(gap.str());
  }
  if (result.moving_dim < result.null_dim) {
    std::ostringstream still;
    still << result.null_dim - result.moving_dim << " of the " << result.null_dim
          << " null directions do not move the weights (xi . theta = 0)";
    result.warnings.push_back(still.str());
  }
  return result;
}

DiscoveryResult discover_symmetries(nn::Module& model, const Tensor& inputs, const Interface& interface,
                                    const DiscoveryOptions& options) {
  return discover_symmetries(model, inputs, interface, LieAlgebra::gl(interface.channels), options);
}

// ---- JSON and candidate interfaces -----------------------------------------------------

nlohmann::json Interface::to_json() const {
  return {{"name", name},
          {"channels", channels},
          {"producers", axes_to_json(producers)},
          {"consumers", axes_to_json(consumers)},
          {"between", between}};
}

nlohmann::json DiscoveryResult::to_json() const {
  const auto finite_or_null = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  return {{"interface", interface.to_json()},
          {"candidate", candidate},
          {"candidate_dim", candidate_dim},
          {"rows", rows},
          {"rank", rank},
          {"null_dim", null_dim},
          {"moving_dim", moving_dim},
          {"smallest_kept", smallest_kept},
          {"largest_dropped", largest_dropped},
          {"row_scale", row_scale},
          {"gap", finite_or_null(gap)},
          {"singular_values", singular_values},
          {"tangent_singular_values", tangent_singular_values},
          {"warnings", warnings}};
}

namespace {

// A Linear, or a Conv2d without groups: something whose weight axis 0 writes channels and
// axis 1 reads them. Returns {in, out}, or {0, 0} for anything else.
std::pair<std::int64_t, std::int64_t> dense_channels(const nn::Module& module) {
  if (const auto* linear = dynamic_cast<const nn::Linear*>(&module))
    return {linear->in_features(), linear->out_features()};
  if (const auto* conv = dynamic_cast<const nn::Conv2d*>(&module); conv && conv->config().groups == 1)
    return {conv->config().in_channels, conv->config().out_channels};
  return {0, 0};
}

void sequential_pairs(const std::string& prefix, const nn::Sequential& sequential, std::vector<Interface>& out) {
  const auto children = sequential.named_children();
  const std::string dot = prefix.empty() ? "" : prefix + ".";
  for (std::size_t i = 0; i < children.size(); ++i) {
    const auto [in_i, out_i] = dense_channels(*children[i].second);
    if (out_i == 0) continue;
    std::string between;
    for (std::size_t j = i + 1; j < children.size(); ++j) {
      const nn::Module& next = *children[j].second;
      const auto [in_j, out_j] = dense_channels(next);
      if (out_j > 0) {
        if (in_j != out_i) break;  // e.g. a Flatten turned channels into features
        Interface interface;
        interface.name = dot + children[i].first + " -> " + dot + children[j].first;
        interface.channels = out_i;
        const std::string first = dot + children[i].first + ".";
        interface.producers.push_back({first + "weight", 0});
        if (children[i].second->named_parameters().size() > 1) interface.producers.push_back({first + "bias", 0});
        interface.consumers.push_back({dot + children[j].first + ".weight", 1});
        interface.between = between.empty() ? "linear" : between;
        out.push_back(std::move(interface));
        break;
      }
      if (next.num_parameters() > 0) break;  // a BatchNorm, LayerNorm, ...: not an interface
      between += (between.empty() ? "" : ", ") + next.type_name();
    }
  }
}

}  // namespace

std::vector<Interface> candidate_interfaces(const nn::Module& model) {
  std::vector<Interface> out;
  const nlohmann::json structure = model.weight_structure();
  if (structure.is_object()) {
    for (const char* key : {"streams", "interfaces"}) {
      if (!structure.contains(key)) continue;
      for (const auto& item : structure.at(key)) {
        Interface interface;
        const bool stream = std::string(key) == "streams";
        interface.name = (stream ? "stream " : "") + item.at("name").get<std::string>();
        interface.channels = item.at("channels").get<std::int64_t>();
        interface.producers = axes_from_json(item.at("producers"));
        interface.consumers = axes_from_json(item.at("consumers"));
        if (stream)
          interface.between = "entry " + item.value("entry", std::string("linear")) + ", exit " +
                              item.value("exit", std::string("linear"));
        else
          interface.between = item.value("between", std::string());
        out.push_back(std::move(interface));
      }
    }
  }
  if (const auto* sequential = dynamic_cast<const nn::Sequential*>(&model)) sequential_pairs("", *sequential, out);
  for (const auto& [name, module] : model.named_modules())
    if (const auto* sequential = dynamic_cast<const nn::Sequential*>(module.get()))
      sequential_pairs(name, *sequential, out);
  return out;
}

}  // namespace symgrad::symmetry
