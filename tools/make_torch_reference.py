#!/usr/bin/python3
"""Writes tests/data/torch_reference.json: PyTorch 1.13 values that symgrad is checked against.

Each case names an op known to tests/engine/test_torch_reference.cpp, its arguments, its
input tensors, the forward outputs, a fixed random weighting w of the outputs and the
gradients of  L = sum_k sum(output_k * w_k)  with respect to every input. Some cases also
hold a second-order value: for random directions v_i, the gradient with respect to the
inputs of  sum_i sum(dL/dinput_i * v_i)  (a Hessian-vector product, through create_graph).

Every random number comes from a torch.Generator seeded with the CRC-32 of the case id, so
the file is reproduced byte for byte by re-running the script, and adding a case does not
change the others. Run from anywhere:  /usr/bin/python3 tools/make_torch_reference.py
(Debian's python3-torch; the tests themselves never call Python).
"""
import json
import pathlib
import zlib

import torch
import torch.nn.functional as F

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "torch_reference.json"
DTYPES = {"float32": torch.float32, "float64": torch.float64}
F32, F64 = "float32", "float64"
TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
                  "circular": "circular"}


# ---- the ops, as the C++ test maps them (same names, same arguments) --------------------

def index_tensor(packed):
    return torch.tensor(packed["values"], dtype=torch.float64).reshape(packed["shape"]).long()


def all_axes(x, args):
    return tuple(args["axes"]) if args["axes"] else tuple(range(x.dim()))


def python_slice(x, a):
    index = [slice(None)] * x.dim()
    index[a["axis"]] = slice(a["start"], a["end"], a["step"])
    return x[tuple(index)]


def conv2d(xs, a):
    x, weight = xs[0], xs[1]
    bias = xs[2] if len(xs) == 3 else None
    ph, pw = a["padding"]
    if a["padding_mode"] != "zeros":  # what nn.Conv2d does for a non-zero padding_mode
        x = F.pad(x, (pw, pw, ph, ph), mode=TORCH_PAD_MODE[a["padding_mode"]])
        ph, pw = 0, 0
    return F.conv2d(x, weight, bias, stride=tuple(a["stride"]), padding=(ph, pw),
                    dilation=tuple(a["dilation"]), groups=a["groups"])


def cross_entropy(xs, a):
    # The composite a model writes by hand: -mean(log_softmax(logits)[n, target[n]]).
    targets = index_tensor(a["targets"])
    picked = torch.gather(F.log_softmax(xs[0], dim=1), 1, targets)
    loss = -picked.mean()
    assert torch.allclose(loss, F.cross_entropy(xs[0], targets.reshape(-1)))
    return loss


TORCH_OPS = {
    # unary
    "neg": lambda xs, a: -xs[0],
    "abs": lambda xs, a: torch.abs(xs[0]),
    "exp": lambda xs, a: torch.exp(xs[0]),
    "log": lambda xs, a: torch.log(xs[0]),
    "sqrt": lambda xs, a: torch.sqrt(xs[0]),
    "square": lambda xs, a: torch.square(xs[0]),
    "pow_scalar": lambda xs, a: torch.pow(xs[0], a["exponent"]),
    "sin": lambda xs, a: torch.sin(xs[0]),
    "cos": lambda xs, a: torch.cos(xs[0]),
    "tanh": lambda xs, a: torch.tanh(xs[0]),
    "sigmoid": lambda xs, a: torch.sigmoid(xs[0]),
    "relu": lambda xs, a: torch.relu(xs[0]),
    "gelu": lambda xs, a: F.gelu(xs[0], approximate="none"),
    "softplus": lambda xs, a: F.softplus(xs[0]),
    "silu": lambda xs, a: F.silu(xs[0]),
    "erf": lambda xs, a: torch.erf(xs[0]),
    "reciprocal": lambda xs, a: torch.reciprocal(xs[0]),
    # binary, broadcasting
    "add": lambda xs, a: xs[0] + xs[1],
    "sub": lambda xs, a: xs[0] - xs[1],
    "mul": lambda xs, a: xs[0] * xs[1],
    "div": lambda xs, a: xs[0] / xs[1],
    "pow": lambda xs, a: torch.pow(xs[0], xs[1]),
    "maximum": lambda xs, a: torch.maximum(xs[0], xs[1]),
    "minimum": lambda xs, a: torch.minimum(xs[0], xs[1]),
    "where": lambda xs, a: torch.where(index_tensor(a["condition"]) != 0, xs[0], xs[1]),
    # reductions (an empty axes list means all axes)
    "sum": lambda xs, a: torch.sum(xs[0], dim=all_axes(xs[0], a), keepdim=a["keepdim"]),
    "mean": lambda xs, a: torch.mean(xs[0], dim=all_axes(xs[0], a), keepdim=a["keepdim"]),
    "max": lambda xs, a: torch.amax(xs[0], dim=all_axes(xs[0], a), keepdim=a["keepdim"]),
    "min": lambda xs, a: torch.amin(xs[0], dim=all_axes(xs[0], a), keepdim=a["keepdim"]),
    "var": lambda xs, a: torch.var(xs[0], dim=all_axes(xs[0], a), correction=a["correction"],
                                   keepdim=a["keepdim"]),
    # softmax family
    "logsumexp": lambda xs, a: torch.logsumexp(xs[0], dim=a["axis"], keepdim=a["keepdim"]),
    "softmax": lambda xs, a: F.softmax(xs[0], dim=a["axis"]),
    "log_softmax": lambda xs, a: F.log_softmax(xs[0], dim=a["axis"]),
    "cross_entropy": cross_entropy,
    # matrix products
    "matmul": lambda xs, a: torch.matmul(xs[0], xs[1]),
    "matmul_transposed": lambda xs, a: torch.matmul(
        xs[0].transpose(-2, -1) if a["transpose_a"] else xs[0],
        xs[1].transpose(-2, -1) if a["transpose_b"] else xs[1]),
    # shape ops
    "reshape": lambda xs, a: xs[0].reshape(a["shape"]),
    "flatten": lambda xs, a: torch.flatten(xs[0], a["start_axis"], a["end_axis"]),
    "squeeze": lambda xs, a: torch.squeeze(xs[0], a["axis"]),
    "unsqueeze": lambda xs, a: torch.unsqueeze(xs[0], a["axis"]),
    "permute": lambda xs, a: xs[0].permute(a["order"]),
    "transpose": lambda xs, a: torch.transpose(xs[0], a["axis0"], a["axis1"]),
    "expand": lambda xs, a: xs[0].expand(a["shape"]),
    "narrow": lambda xs, a: torch.narrow(xs[0], a["axis"], a["start"], a["length"]),
    "slice": lambda xs, a: python_slice(xs[0], a),
    "concat": lambda xs, a: torch.cat(xs, dim=a["axis"]),
    "stack": lambda xs, a: torch.stack(xs, dim=a["axis"]),
    "split": lambda xs, a: list(torch.split(xs[0], a["sizes"], dim=a["axis"])),
    "chunk": lambda xs, a: list(torch.chunk(xs[0], a["chunks"], dim=a["axis"])),
    "index_select": lambda xs, a: torch.index_select(xs[0], a["axis"], torch.tensor(a["index"])),
    "gather": lambda xs, a: torch.gather(xs[0], a["axis"], index_tensor(a["index"])),
    "pad": lambda xs, a: F.pad(xs[0], tuple(a["pads"]), mode=TORCH_PAD_MODE[a["mode"]],
                               **({"value": a["value"]} if a["mode"] == "zeros" else {})),
    # convolution and pooling
    "conv2d": conv2d,
    "max_pool2d": lambda xs, a: F.max_pool2d(xs[0], tuple(a["kernel"]), tuple(a["stride"]),
                                             tuple(a["padding"])),
    "avg_pool2d": lambda xs, a: F.avg_pool2d(xs[0], tuple(a["kernel"]), tuple(a["stride"]),
                                             tuple(a["padding"]), count_include_pad=True),
}


# ---- building one case -------------------------------------------------------------------

def U(*shape, low=-1.0, high=1.0):
    """An input drawn uniformly from [low, high)."""
    return (list(shape), low, high)


def uniform(gen, shape, low=-1.0, high=1.0):
    return torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low


def packed(t):
    return {"shape": list(t.shape), "values": [float(v) for v in t.detach().double().reshape(-1).tolist()]}


def random_index(shape, high):
    """An integer tensor argument with entries in [0, high), drawn from the case's generator."""
    return lambda gen: packed(torch.randint(0, high, shape, generator=gen, dtype=torch.int64))


def random_mask(shape):
    return lambda gen: packed((torch.rand(shape, generator=gen, dtype=torch.float64) < 0.5).long())


def make_case(case_id, op, dtype, inputs, second_order=False, **args):
    gen = torch.Generator().manual_seed(zlib.crc32(case_id.encode()))
    torch_dtype = DTYPES[dtype]
    xs = [uniform(gen, shape, low, high).to(torch_dtype).requires_grad_() for shape, low, high in inputs]
    args = {k: (v(gen) if callable(v) else v) for k, v in args.items()}

    outputs = TORCH_OPS[op](xs, args)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    weights = [uniform(gen, out.shape).to(torch_dtype) for out in outputs]
    loss = sum((out * w).sum() for out, w in zip(outputs, weights))
    grads = torch.autograd.grad(loss, xs, create_graph=second_order)

    case = {"id": case_id, "op": op, "dtype": dtype, "args": args,
            "inputs": [packed(x) for x in xs], "outputs": [packed(o) for o in outputs],
            "weights": [packed(w) for w in weights], "grads": [packed(g) for g in grads]}
    if second_order:
        directions = [uniform(gen, x.shape).to(torch_dtype) for x in xs]
        terms = [(g * v).sum() for g, v in zip(grads, directions) if g.requires_grad]
        assert terms, f"{case_id}: the gradient is constant, there is no second order"
        hvp = torch.autograd.grad(sum(terms), xs, allow_unused=True)
        hvp = [torch.zeros_like(x) if h is None else h for x, h in zip(xs, hvp)]
        assert any(h.abs().max() > 0 for h in hvp), f"{case_id}: zero second order"
        case["second_order"] = {"directions": [packed(v) for v in directions],
                                "values": [packed(h) for h in hvp]}
    return case


# ---- the cases ---------------------------------------------------------------------------

POSITIVE = {"low": 0.2, "high": 2.0}


def unary_cases():
    yield make_case("neg_f32", "neg", F32, [U(3, 4)])
    yield make_case("abs_f64", "abs", F64, [U(2, 3, 4)])
    yield make_case("exp_f32", "exp", F32, [U(3, 4, low=-2, high=2)])
    yield make_case("exp_f64_second_order", "exp", F64, [U(3, 4, low=-2, high=2)], second_order=True)
    yield make_case("log_f64", "log", F64, [U(3, 4, **POSITIVE)])
    yield make_case("log_f32", "log", F32, [U(2, 5, **POSITIVE)])
    yield make_case("sqrt_f32", "sqrt", F32, [U(3, 4, **POSITIVE)])
    yield make_case("sqrt_f64_second_order", "sqrt", F64, [U(3, 4, **POSITIVE)], second_order=True)
    yield make_case("square_f64", "square", F64, [U(3, 4, low=-2, high=2)])
    yield make_case("pow_scalar_2_5_f64", "pow_scalar", F64, [U(3, 4, **POSITIVE)], exponent=2.5)
    yield make_case("pow_scalar_3_negative_base_f32", "pow_scalar", F32, [U(3, 4, low=-2, high=2)],
                    exponent=3.0)
    yield make_case("pow_scalar_minus_1_5_f64", "pow_scalar", F64, [U(2, 3, **POSITIVE)], exponent=-1.5)
    yield make_case("sin_f32", "sin", F32, [U(3, 4, low=-3, high=3)])
    yield make_case("cos_f64", "cos", F64, [U(3, 4, low=-3, high=3)])
    yield make_case("tanh_f32", "tanh", F32, [U(3, 4, low=-3, high=3)])
    yield make_case("tanh_f64_second_order", "tanh", F64, [U(2, 5, low=-3, high=3)], second_order=True)
    yield make_case("sigmoid_f64", "sigmoid", F64, [U(3, 4, low=-4, high=4)])
    yield make_case("relu_f32", "relu", F32, [U(3, 4)])
    yield make_case("relu_f64", "relu", F64, [U(2, 3, 2)])
    yield make_case("gelu_f32", "gelu", F32, [U(3, 4, low=-3, high=3)])
    yield make_case("gelu_f64_second_order", "gelu", F64, [U(3, 4, low=-3, high=3)], second_order=True)
    yield make_case("softplus_f32", "softplus", F32, [U(3, 4, low=-4, high=4)])
    yield make_case("softplus_f64", "softplus", F64, [U(3, 4, low=-4, high=4)])
    yield make_case("silu_f64", "silu", F64, [U(3, 4, low=-4, high=4)])
    yield make_case("silu_f32", "silu", F32, [U(3, 4, low=-4, high=4)])
    yield make_case("erf_f64", "erf", F64, [U(3, 4, low=-2, high=2)])
    yield make_case("reciprocal_f32", "reciprocal", F32, [U(3, 4, **POSITIVE)])


def binary_cases():
    yield make_case("add_broadcast_f32", "add", F32, [U(3, 1), U(4)])
    yield make_case("add_broadcast_f64", "add", F64, [U(2, 1, 4), U(3, 1)])
    yield make_case("sub_broadcast_f64", "sub", F64, [U(2, 3, 4), U(3, 1)])
    yield make_case("mul_broadcast_f32", "mul", F32, [U(4), U(3, 4)])
    yield make_case("mul_broadcast_f64_second_order", "mul", F64, [U(2, 1, 4), U(3, 1)], second_order=True)
    yield make_case("div_broadcast_f32", "div", F32, [U(3, 4), U(4, **POSITIVE)])
    yield make_case("div_broadcast_f64_second_order", "div", F64, [U(3, 1), U(2, 3, 4, **POSITIVE)],
                    second_order=True)
    yield make_case("pow_broadcast_f64_second_order", "pow", F64, [U(3, 4, low=0.5, high=2), U(4, low=-2, high=2)],
                    second_order=True)
    yield make_case("pow_broadcast_f32", "pow", F32, [U(3, 1, low=0.5, high=2), U(3, 4, low=-2, high=2)])
    yield make_case("maximum_broadcast_f32", "maximum", F32, [U(3, 4), U(4)])
    yield make_case("maximum_broadcast_f64", "maximum", F64, [U(2, 3, 1), U(3, 4)])
    yield make_case("minimum_broadcast_f64", "minimum", F64, [U(2, 3), U(2, 1)])
    yield make_case("minimum_broadcast_f32", "minimum", F32, [U(4), U(2, 3, 4)])
    yield make_case("where_broadcast_f32", "where", F32, [U(3, 4), U(4)], condition=random_mask([3, 1]))
    yield make_case("where_broadcast_f64", "where", F64, [U(2, 1, 4), U(3, 1)], condition=random_mask([2, 3, 4]))


def reduction_cases():
    yield make_case("sum_all_f32", "sum", F32, [U(2, 3, 4)], axes=[], keepdim=False)
    yield make_case("sum_axes_0_2_keepdim_f64", "sum", F64, [U(2, 3, 4)], axes=[0, 2], keepdim=True)
    yield make_case("sum_last_axis_f32", "sum", F32, [U(2, 3, 4)], axes=[-1], keepdim=False)
    yield make_case("mean_axis_1_f64", "mean", F64, [U(2, 3, 4)], axes=[1], keepdim=False)
    yield make_case("mean_axes_0_2_keepdim_f32", "mean", F32, [U(2, 3, 4)], axes=[0, 2], keepdim=True)
    yield make_case("mean_all_keepdim_f64", "mean", F64, [U(3, 4)], axes=[], keepdim=True)
    yield make_case("max_axis_1_f64", "max", F64, [U(2, 3, 4)], axes=[1], keepdim=False)
    yield make_case("max_axes_0_2_keepdim_f32", "max", F32, [U(2, 3, 4)], axes=[0, 2], keepdim=True)
    yield make_case("max_all_f64", "max", F64, [U(3, 4)], axes=[], keepdim=False)
    yield make_case("min_axis_0_f32", "min", F32, [U(3, 4)], axes=[0], keepdim=False)
    yield make_case("min_axes_1_2_f64", "min", F64, [U(2, 3, 4)], axes=[1, 2], keepdim=False)
    yield make_case("var_axis_1_unbiased_f64", "var", F64, [U(2, 5, 3)], axes=[1], correction=1, keepdim=False)
    yield make_case("var_axes_0_2_unbiased_keepdim_f32", "var", F32, [U(2, 3, 4)], axes=[0, 2], correction=1,
                    keepdim=True)
    yield make_case("var_all_unbiased_f64_second_order", "var", F64, [U(3, 4)], axes=[], correction=1,
                    keepdim=False, second_order=True)
    yield make_case("var_axis_0_population_f64", "var", F64, [U(4, 3)], axes=[0], correction=0, keepdim=False)


def softmax_cases():
    yield make_case("logsumexp_axis_1_f32", "logsumexp", F32, [U(3, 5, low=-3, high=3)], axis=1, keepdim=False)
    yield make_case("logsumexp_axis_0_keepdim_f64_second_order", "logsumexp", F64, [U(4, 3, low=-3, high=3)],
                    axis=0, keepdim=True, second_order=True)
    yield make_case("softmax_last_axis_f64_second_order", "softmax", F64, [U(2, 3, 4, low=-3, high=3)], axis=-1,
                    second_order=True)
    yield make_case("softmax_axis_0_f32", "softmax", F32, [U(4, 3, low=-3, high=3)], axis=0)
    yield make_case("log_softmax_axis_1_f64_second_order", "log_softmax", F64, [U(3, 5, low=-3, high=3)], axis=1,
                    second_order=True)
    yield make_case("log_softmax_axis_1_f32", "log_softmax", F32, [U(2, 4, 3, low=-3, high=3)], axis=1)
    yield make_case("cross_entropy_f64_second_order", "cross_entropy", F64, [U(4, 5, low=-3, high=3)],
                    targets=random_index([4, 1], 5), second_order=True)
    yield make_case("cross_entropy_f32", "cross_entropy", F32, [U(6, 3, low=-3, high=3)],
                    targets=random_index([6, 1], 3))


def matmul_cases():
    yield make_case("matmul_2d_f32", "matmul", F32, [U(3, 4), U(4, 5)])
    yield make_case("matmul_2d_f64_second_order", "matmul", F64, [U(3, 4), U(4, 2)], second_order=True)
    yield make_case("matmul_batched_broadcast_f64", "matmul", F64, [U(2, 1, 3, 4), U(3, 4, 2)])
    yield make_case("matmul_batched_rank_broadcast_f32", "matmul", F32, [U(2, 3, 4), U(4, 5)])
    yield make_case("matmul_transposed_both_f64", "matmul_transposed", F64, [U(2, 4, 3), U(5, 4)],
                    transpose_a=True, transpose_b=True)
    yield make_case("matmul_transposed_a_f32", "matmul_transposed", F32, [U(4, 3), U(4, 2)],
                    transpose_a=True, transpose_b=False)


def shape_cases():
    yield make_case("reshape_inferred_f32", "reshape", F32, [U(2, 3, 4)], shape=[4, -1])
    yield make_case("flatten_middle_f64", "flatten", F64, [U(2, 3, 4, 2)], start_axis=1, end_axis=2)
    yield make_case("squeeze_f64", "squeeze", F64, [U(3, 1, 4)], axis=1)
    yield make_case("unsqueeze_negative_axis_f32", "unsqueeze", F32, [U(3, 4)], axis=-1)
    yield make_case("permute_f64", "permute", F64, [U(2, 3, 4)], order=[2, 0, 1])
    yield make_case("transpose_0_2_f32", "transpose", F32, [U(2, 3, 4)], axis0=0, axis1=2)
    yield make_case("expand_f64", "expand", F64, [U(3, 1)], shape=[2, 3, 4])
    yield make_case("narrow_f64", "narrow", F64, [U(3, 5, 2)], axis=1, start=1, length=3)
    yield make_case("slice_negative_start_step_2_f32", "slice", F32, [U(2, 3, 7)], axis=2, start=-6, end=100,
                    step=2)
    yield make_case("concat_axis_1_f64", "concat", F64, [U(2, 1, 3), U(2, 3, 3), U(2, 2, 3)], axis=1)
    yield make_case("stack_axis_1_f32", "stack", F32, [U(3, 4), U(3, 4)], axis=1)
    yield make_case("split_sizes_f64", "split", F64, [U(2, 4, 3)], sizes=[1, 3], axis=1)
    yield make_case("chunk_uneven_f32", "chunk", F32, [U(5, 2)], chunks=3, axis=0)
    yield make_case("index_select_repeated_f32", "index_select", F32, [U(2, 4, 3)], axis=1, index=[2, 0, 2, 3])
    yield make_case("gather_axis_1_f64", "gather", F64, [U(3, 4)], axis=1, index=random_index([3, 5], 4))
    yield make_case("gather_axis_0_f32", "gather", F32, [U(4, 3)], axis=0, index=random_index([2, 3], 4))
    yield make_case("pad_zeros_value_f32", "pad", F32, [U(1, 2, 3, 4)], pads=[1, 2, 0, 1], mode="zeros",
                    value=0.5)
    yield make_case("pad_reflect_f64", "pad", F64, [U(1, 2, 4, 5)], pads=[2, 1, 1, 3], mode="reflect", value=0.0)
    yield make_case("pad_replicate_f32", "pad", F32, [U(2, 1, 3, 4)], pads=[1, 3, 2, 0], mode="replicate",
                    value=0.0)
    yield make_case("pad_circular_f64", "pad", F64, [U(1, 2, 3, 4)], pads=[2, 1, 1, 2], mode="circular", value=0.0)


def conv_pool_cases():
    def conv(case_id, dtype, x, weight, bias=True, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
             padding_mode="zeros", second_order=False):
        inputs = [U(*x), U(*weight)] + ([U(weight[0])] if bias else [])
        return make_case(case_id, "conv2d", dtype, inputs, second_order=second_order, stride=list(stride),
                         padding=list(padding), dilation=list(dilation), groups=groups, padding_mode=padding_mode)

    yield conv("conv2d_bias_f64_second_order", F64, (2, 3, 5, 5), (4, 3, 3, 3), second_order=True)
    yield conv("conv2d_stride_2_padding_1_f32", F32, (2, 3, 6, 5), (4, 3, 3, 3), stride=(2, 2), padding=(1, 1))
    yield conv("conv2d_dilation_2_no_bias_f64", F64, (1, 2, 7, 6), (3, 2, 3, 2), bias=False, padding=(2, 1),
               dilation=(2, 2))
    yield conv("conv2d_asymmetric_stride_padding_f64", F64, (2, 2, 5, 6), (3, 2, 2, 3), stride=(2, 1),
               padding=(0, 1))
    yield conv("conv2d_groups_2_f32", F32, (2, 4, 5, 5), (6, 2, 3, 3), groups=2, padding=(1, 1))
    yield conv("conv2d_depthwise_multiplier_2_f64_second_order", F64, (2, 3, 5, 4), (6, 1, 3, 3), groups=3,
               padding=(1, 1), second_order=True)
    yield conv("conv2d_depthwise_multiplier_2_f32", F32, (1, 2, 6, 6), (4, 1, 3, 3), groups=2, stride=(2, 2))
    yield conv("conv2d_reflect_f32", F32, (2, 2, 5, 6), (3, 2, 3, 3), padding=(1, 2), padding_mode="reflect")
    yield conv("conv2d_reflect_f64", F64, (1, 3, 5, 5), (2, 3, 3, 3), padding=(2, 1), padding_mode="reflect",
               stride=(2, 1))
    yield conv("conv2d_replicate_f64", F64, (2, 2, 4, 5), (3, 2, 3, 3), padding=(1, 2), padding_mode="replicate")
    yield conv("conv2d_circular_f32", F32, (1, 2, 5, 4), (2, 2, 3, 3), padding=(2, 1), padding_mode="circular")
    yield conv("conv2d_circular_groups_2_f64", F64, (2, 4, 4, 5), (4, 2, 3, 3), padding=(1, 1), groups=2,
               padding_mode="circular")

    def pool(case_id, op, dtype, x, kernel, stride, padding):
        return make_case(case_id, op, dtype, [U(*x)], kernel=list(kernel), stride=list(stride),
                         padding=list(padding))

    yield pool("max_pool2d_2x2_f32", "max_pool2d", F32, (2, 3, 4, 6), (2, 2), (2, 2), (0, 0))
    yield pool("max_pool2d_3x3_stride_2_padding_1_f64", "max_pool2d", F64, (2, 2, 5, 6), (3, 3), (2, 2), (1, 1))
    yield pool("max_pool2d_overlapping_2x3_f32", "max_pool2d", F32, (1, 2, 5, 7), (2, 3), (1, 2), (1, 0))
    yield pool("avg_pool2d_2x2_f64", "avg_pool2d", F64, (2, 3, 4, 6), (2, 2), (2, 2), (0, 0))
    yield pool("avg_pool2d_3x3_stride_2_padding_1_f32", "avg_pool2d", F32, (2, 2, 5, 6), (3, 3), (2, 2), (1, 1))
    yield pool("avg_pool2d_3x2_stride_2x1_padding_1x0_f64", "avg_pool2d", F64, (1, 2, 6, 5), (3, 2), (2, 1),
               (1, 0))


def main():
    torch.set_num_threads(1)  # one summation order, so the file is reproducible
    groups = [unary_cases, binary_cases, reduction_cases, softmax_cases, matmul_cases, shape_cases,
              conv_pool_cases]
    cases = [case for group in groups for case in group()]
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"

    header = {"source": "tools/make_torch_reference.py", "torch_version": torch.__version__,
              "loss": "sum_k sum(outputs[k] * weights[k])",
              "second_order": "d/dinputs of sum_i sum(grads[i] * directions[i])"}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()] + ['"cases": [']
    lines += [json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else "")
              for i, case in enumerate(cases)]
    lines += ["]", "}"]
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(cases)} cases to {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
