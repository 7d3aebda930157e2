// symgrad against PyTorch 1.13: forward values, gradients of a weighted sum of the outputs,
// and Hessian-vector products, for every case in tests/data/torch_reference.json.
// The file is written by tools/make_torch_reference.py; this test never runs Python.
// Each case's "op" names an entry of ops() below, which calls symgrad the way the script
// calls torch; an op name this file does not know fails its case.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>

#include "engine/engine.hpp"
#include "support/reference_data.hpp"
#include "support/testing.hpp"

using namespace symgrad;
using json = nlohmann::json;

namespace {

const json& reference() {
  return testing::reference_data("torch_reference.json", "tools/make_torch_reference.py");
}

DType dtype_named(const std::string& name) {
  if (name == "float32") return DType::f32;
  if (name == "float64") return DType::f64;
  throw std::invalid_argument("torch_reference.json: unknown dtype '" + name + "'");
}

TensorList tensors_from(const json& list, DType dtype) {
  TensorList out;
  for (const json& packed : list) out.push_back(testing::tensor_from_json(packed, dtype));
  return out;
}

std::vector<std::int64_t> ints(const json& args, const char* key) {
  return args.at(key).get<std::vector<std::int64_t>>();
}
std::int64_t integer(const json& args, const char* key) { return args.at(key).get<std::int64_t>(); }

PadMode pad_mode_named(const std::string& name) {
  for (PadMode m : {PadMode::zeros, PadMode::reflect, PadMode::replicate, PadMode::circular})
    if (name == pad_mode_name(m)) return m;
  throw std::invalid_argument("torch_reference.json: unknown padding mode '" + name + "'");
}

Conv2dOptions conv_options(const json& a) {
  Conv2dOptions o;
  o.stride_h = ints(a, "stride").at(0), o.stride_w = ints(a, "stride").at(1);
  o.padding_h = ints(a, "padding").at(0), o.padding_w = ints(a, "padding").at(1);
  o.dilation_h = ints(a, "dilation").at(0), o.dilation_w = ints(a, "dilation").at(1);
  o.groups = integer(a, "groups");
  o.padding_mode = pad_mode_named(a.at("padding_mode").get<std::string>());
  return o;
}

Pool2dOptions pool_options(const json& a) {
  Pool2dOptions o;
  o.kernel_h = ints(a, "kernel").at(0), o.kernel_w = ints(a, "kernel").at(1);
  o.stride_h = ints(a, "stride").at(0), o.stride_w = ints(a, "stride").at(1);
  o.padding_h = ints(a, "padding").at(0), o.padding_w = ints(a, "padding").at(1);
  return o;
}

// One symgrad call per op name: inputs (all requiring grad) and the case's args in,
// the outputs out. Index and condition tensors come from args, in the inputs' dtype.
using OpFn = std::function<TensorList(const TensorList& x, const json& args)>;
using Unary = Tensor (*)(const Tensor&);
using Binary = Tensor (*)(const Tensor&, const Tensor&);
using Reduction = Tensor (*)(const Tensor&, const Axes&, bool);

OpFn elementwise(Unary f) {
  return [f](const TensorList& x, const json&) { return TensorList{f(x.at(0))}; };
}
OpFn binary(Binary f) {
  return [f](const TensorList& x, const json&) { return TensorList{f(x.at(0), x.at(1))}; };
}
OpFn reduction(Reduction f) {
  return [f](const TensorList& x, const json& a) {
    return TensorList{f(x.at(0), ints(a, "axes"), a.at("keepdim").get<bool>())};
  };
}

const std::map<std::string, OpFn>& ops() {
  static const std::map<std::string, OpFn> table = {
      // unary
      {"neg", elementwise(static_cast<Unary>(&neg))},
      {"abs", elementwise(static_cast<Unary>(&symgrad::abs))},
      {"exp", elementwise(static_cast<Unary>(&symgrad::exp))},
      {"log", elementwise(static_cast<Unary>(&symgrad::log))},
      {"sqrt", elementwise(static_cast<Unary>(&symgrad::sqrt))},
      {"square", elementwise(static_cast<Unary>(&square))},
      {"pow_scalar",
       [](const TensorList& x, const json& a) {
         return TensorList{symgrad::pow(x.at(0), a.at("exponent").get<double>())};
       }},
      {"sin", elementwise(static_cast<Unary>(&symgrad::sin))},
      {"cos", elementwise(static_cast<Unary>(&symgrad::cos))},
      {"tanh", elementwise(static_cast<Unary>(&symgrad::tanh))},
      {"sigmoid", elementwise(static_cast<Unary>(&sigmoid))},
      {"relu", elementwise(static_cast<Unary>(&relu))},
      {"gelu", elementwise(static_cast<Unary>(&gelu))},
      {"softplus", elementwise(static_cast<Unary>(&softplus))},
      {"silu", elementwise(static_cast<Unary>(&silu))},
      {"erf", elementwise(static_cast<Unary>(&symgrad::erf))},
      {"reciprocal", elementwise(static_cast<Unary>(&reciprocal))},
      // binary, broadcasting
      {"add", binary(static_cast<Binary>(&add))},
      {"sub", binary(static_cast<Binary>(&sub))},
      {"mul", binary(static_cast<Binary>(&mul))},
      {"div", binary(static_cast<Binary>(&symgrad::div))},
      {"pow", binary(static_cast<Binary>(&symgrad::pow))},
      {"maximum", binary(static_cast<Binary>(&maximum))},
      {"minimum", binary(static_cast<Binary>(&minimum))},
      {"where",
       [](const TensorList& x, const json& a) {
         return TensorList{where(testing::tensor_from_json(a.at("condition"), x.at(0).dtype()), x.at(0), x.at(1))};
       }},
      // reductions
      {"sum", reduction(static_cast<Reduction>(&sum))},
      {"mean", reduction(static_cast<Reduction>(&mean))},
      {"max", reduction(static_cast<Reduction>(&symgrad::max))},
      {"min", reduction(static_cast<Reduction>(&symgrad::min))},
      {"var",
       [](const TensorList& x, const json& a) {
         return TensorList{var(x.at(0), ints(a, "axes"), integer(a, "correction"), a.at("keepdim").get<bool>())};
       }},
      // softmax family
      {"logsumexp",
       [](const TensorList& x, const json& a) {
         return TensorList{logsumexp(x.at(0), integer(a, "axis"), a.at("keepdim").get<bool>())};
       }},
      {"softmax", [](const TensorList& x, const json& a) { return TensorList{softmax(x.at(0), integer(a, "axis"))}; }},
      {"log_softmax",
       [](const TensorList& x, const json& a) { return TensorList{log_softmax(x.at(0), integer(a, "axis"))}; }},
      {"cross_entropy",
       [](const TensorList& x, const json& a) {
         const Tensor targets = testing::tensor_from_json(a.at("targets"), x.at(0).dtype());  // [N, 1]
         return TensorList{-mean(gather(log_softmax(x.at(0), 1), 1, targets))};
       }},
      // matrix products
      {"matmul", binary(static_cast<Binary>(&matmul))},
      {"matmul_transposed",
       [](const TensorList& x, const json& a) {
         return TensorList{matmul(x.at(0), x.at(1), a.at("transpose_a").get<bool>(), a.at("transpose_b").get<bool>())};
       }},
      // shape ops
      {"reshape", [](const TensorList& x, const json& a) { return TensorList{reshape(x.at(0), ints(a, "shape"))}; }},
      {"flatten",
       [](const TensorList& x, const json& a) {
         return TensorList{flatten(x.at(0), integer(a, "start_axis"), integer(a, "end_axis"))};
       }},
      {"squeeze", [](const TensorList& x, const json& a) { return TensorList{squeeze(x.at(0), integer(a, "axis"))}; }},
      {"unsqueeze",
       [](const TensorList& x, const json& a) { return TensorList{unsqueeze(x.at(0), integer(a, "axis"))}; }},
      {"permute", [](const TensorList& x, const json& a) { return TensorList{permute(x.at(0), ints(a, "order"))}; }},
      {"transpose",
       [](const TensorList& x, const json& a) {
         return TensorList{transpose(x.at(0), integer(a, "axis0"), integer(a, "axis1"))};
       }},
      {"expand", [](const TensorList& x, const json& a) { return TensorList{expand(x.at(0), ints(a, "shape"))}; }},
      {"narrow",
       [](const TensorList& x, const json& a) {
         return TensorList{narrow(x.at(0), integer(a, "axis"), integer(a, "start"), integer(a, "length"))};
       }},
      {"slice",
       [](const TensorList& x, const json& a) {
         return TensorList{
             slice(x.at(0), integer(a, "axis"), integer(a, "start"), integer(a, "end"), integer(a, "step"))};
       }},
      {"concat", [](const TensorList& x, const json& a) { return TensorList{concat(x, integer(a, "axis"))}; }},
      {"stack", [](const TensorList& x, const json& a) { return TensorList{stack(x, integer(a, "axis"))}; }},
      {"split",
       [](const TensorList& x, const json& a) { return split(x.at(0), ints(a, "sizes"), integer(a, "axis")); }},
      {"chunk",
       [](const TensorList& x, const json& a) { return chunk(x.at(0), integer(a, "chunks"), integer(a, "axis")); }},
      {"index_select",
       [](const TensorList& x, const json& a) {
         return TensorList{index_select(x.at(0), integer(a, "axis"), ints(a, "index"))};
       }},
      {"gather",
       [](const TensorList& x, const json& a) {
         return TensorList{gather(x.at(0), integer(a, "axis"), testing::tensor_from_json(a.at("index"), x.at(0).dtype()))};
       }},
      {"pad",
       [](const TensorList& x, const json& a) {
         return TensorList{pad(x.at(0), ints(a, "pads"), pad_mode_named(a.at("mode").get<std::string>()),
                               a.at("value").get<double>())};
       }},
      // convolution and pooling; conv2d's bias is the optional third input
      {"conv2d",
       [](const TensorList& x, const json& a) {
         const Tensor bias = x.size() == 3 ? x[2] : Tensor();
         return TensorList{conv2d(x.at(0), x.at(1), bias, conv_options(a))};
       }},
      {"max_pool2d",
       [](const TensorList& x, const json& a) { return TensorList{max_pool2d(x.at(0), pool_options(a))}; }},
      {"avg_pool2d",
       [](const TensorList& x, const json& a) { return TensorList{avg_pool2d(x.at(0), pool_options(a))}; }},
  };
  return table;
}

// float32 results differ from torch's by the rounding of differently ordered sums and
// of SIMD transcendental approximations; float64 ones should agree to a few ulps.
struct Tolerance {
  double rtol, atol;
};
Tolerance tolerance_for(DType dtype) { return dtype == DType::f32 ? Tolerance{1e-5, 1e-6} : Tolerance{1e-10, 1e-12}; }

void require_matches(const Tensor& actual, const json& expected, DType dtype, const std::string& what) {
  INFO(what);
  REQUIRE(actual.defined());
  REQUIRE(dtype_name(actual.dtype()) == std::string(dtype_name(dtype)));
  REQUIRE(actual.shape() == expected.at("shape").get<Shape>());
  const Tolerance tol = tolerance_for(dtype);
  testing::require_allclose(actual, expected.at("values").get<std::vector<double>>(), tol.rtol, tol.atol);
}

void check_case(const json& c) {
  const std::string op = c.at("op").get<std::string>();
  const DType dtype = dtype_named(c.at("dtype").get<std::string>());
  INFO("op " << op << ", " << dtype_name(dtype) << ", args " << c.at("args").dump());
  const auto found = ops().find(op);
  if (found == ops().end()) FAIL("unknown op '" << op << "': map it in ops() in " << __FILE__);

  TensorList inputs = tensors_from(c.at("inputs"), dtype);
  for (Tensor& x : inputs) x.requires_grad_();
  const TensorList outputs = found->second(inputs, c.at("args"));
  REQUIRE(outputs.size() == c.at("outputs").size());
  for (std::size_t k = 0; k < outputs.size(); ++k)
    require_matches(outputs[k], c["outputs"][k], dtype, "output " + std::to_string(k));

  // dL/dinputs for L = sum_k sum(outputs[k] * weights[k]): grad() with weights as grad_outputs.
  const bool second_order = c.contains("second_order");
  const TensorList weights = tensors_from(c.at("weights"), dtype);
  const TensorList grads = grad(outputs, inputs, weights, {.create_graph = second_order});
  REQUIRE(grads.size() == inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    require_matches(grads[i], c["grads"][i], dtype, "gradient w.r.t. input " + std::to_string(i));
  if (!second_order) return;

  // d/dinputs of sum_i sum(grads[i] * directions[i]); a gradient that does not depend on
  // the inputs (it has no graph) contributes nothing, as in torch.
  const TensorList directions = tensors_from(c["second_order"].at("directions"), dtype);
  Tensor inner;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!grads[i].requires_grad()) continue;
    const Tensor term = sum(grads[i] * directions[i]);
    inner = inner.defined() ? inner + term : term;
  }
  INFO("second order");
  REQUIRE(inner.defined());
  const TensorList hvp = grad({inner}, inputs, {}, {.allow_unused = true});
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor h = hvp.at(i).defined() ? hvp[i] : zeros_like(inputs[i]);
    require_matches(h, c["second_order"].at("values")[i], dtype, "second order w.r.t. input " + std::to_string(i));
  }
}

}  // namespace

TEST_CASE("symgrad agrees with PyTorch 1.13 on every reference case", "[torch_reference]") {
  for (const json& c : reference().at("cases")) {
    DYNAMIC_SECTION(c.at("id").get<std::string>()) { check_case(c); }
  }
}

TEST_CASE("the PyTorch reference file is complete", "[torch_reference]") {
  const json& data = reference();
  REQUIRE(data.at("torch_version").get<std::string>().rfind("1.13", 0) == 0);
  const json& cases = data.at("cases");
  REQUIRE(cases.size() >= 50);

  std::set<std::string> ops_in_file;
  std::size_t second_order_cases = 0;
  for (const json& c : cases) {
    ops_in_file.insert(c.at("op").get<std::string>());
    second_order_cases += c.contains("second_order") ? 1 : 0;
  }
  REQUIRE(second_order_cases >= 10);
  for (const auto& [name, fn] : ops()) {
    INFO("op " << name << " is mapped here but has no case in the file");
    CHECK(ops_in_file.count(name) == 1);
  }
}
