#!/usr/bin/python3
"""Writes tests/data/nn_layer_reference.json: PyTorch 1.13 values for symgrad's nn layers.

Each case builds one torch.nn module in float64 from "module" and "args" (the names
tests/nn/test_linear_conv.cpp and tests/nn/test_layers_misc.cpp use), sets its parameters
to the random values stored under "params", runs it on the stored "input", and records
the "output" and the gradients of  L = sum(output * weighting)  with respect to the input
and every parameter ("grads"). Everything is float64, so the C++ tests can compare in
float64 tightly and in float32 after rounding the same inputs.

Random numbers come from a torch.Generator seeded with the CRC-32 of the case id: the file
is reproduced byte for byte by re-running the script, and adding a case changes no other.
Run from anywhere:  /usr/bin/python3 tools/make_nn_layer_reference.py
"""
import json
import pathlib
import zlib

import torch
import torch.nn as nn

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "nn_layer_reference.json"


def packed(t):
    return {"shape": list(t.shape), "values": [float(v) for v in t.detach().reshape(-1).tolist()]}


def pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [v, v]


# ---- the modules, built from "args" the way the C++ tests build theirs ------------------

def linear(a):
    return nn.Linear(a["in"], a["out"], bias=a["bias"])


def conv2d(a):
    return nn.Conv2d(a["in"], a["out"], tuple(a["kernel"]), stride=tuple(a["stride"]), padding=tuple(a["padding"]),
                     dilation=tuple(a["dilation"]), groups=a["groups"], bias=a["bias"],
                     padding_mode=a["padding_mode"])


class GlobalAvgPool2d(nn.Module):
    """symgrad's GlobalAvgPool2d: [N, C, H, W] -> [N, C]."""

    def __init__(self):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        return torch.flatten(self.pool(x), 1)


MODULES = {
    "Linear": linear,
    "Conv2d": conv2d,
    "ReLU": lambda a: nn.ReLU(),
    "GELU": lambda a: nn.GELU(approximate="none"),
    "Tanh": lambda a: nn.Tanh(),
    "Sigmoid": lambda a: nn.Sigmoid(),
    "Softplus": lambda a: nn.Softplus(beta=a["beta"], threshold=a["threshold"]),
    "SiLU": lambda a: nn.SiLU(),
    "MaxPool2d": lambda a: nn.MaxPool2d(a["kernel"], stride=a["stride"], padding=a["padding"]),
    "AvgPool2d": lambda a: nn.AvgPool2d(a["kernel"], stride=a["stride"], padding=a["padding"]),
    "GlobalAvgPool2d": lambda a: GlobalAvgPool2d(),
}


def make_case(case_id, module, input_shape, input_scale=1.0, **args):
    gen = torch.Generator().manual_seed(zlib.crc32(case_id.encode()))

    def draw(shape, scale=1.0):
        # Uniform on [-scale, scale): values away from ties and kinks with probability 1.
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * scale

    layer = MODULES[module](args).double()
    params = {}
    with torch.no_grad():
        for name, p in layer.named_parameters():
            p.copy_(draw(p.shape))
            params[name] = packed(p)
    x = draw(input_shape, input_scale).requires_grad_()
    out = layer(x)
    weighting = draw(out.shape)
    (out * weighting).sum().backward()
    grads = {"input": packed(x.grad)}
    for name, p in layer.named_parameters():
        grads[name] = packed(p.grad)
    return {"id": case_id, "module": module, "args": args, "input": packed(x), "params": params,
            "output": packed(out), "weighting": packed(weighting), "grads": grads}


def linear_cases():
    yield make_case("linear_bias", "Linear", (4, 5), **{"in": 5, "out": 3, "bias": True})
    yield make_case("linear_no_bias", "Linear", (3, 6), **{"in": 6, "out": 2, "bias": False})
    yield make_case("linear_3d_input", "Linear", (2, 3, 4), **{"in": 4, "out": 5, "bias": True})
    yield make_case("linear_batch_of_one", "Linear", (1, 7), **{"in": 7, "out": 4, "bias": True})


def conv_cases():
    def conv(case_id, input_shape, in_channels, out_channels, kernel, stride=1, padding=0, dilation=1, groups=1,
             bias=True, padding_mode="zeros"):
        return make_case(case_id, "Conv2d", input_shape, **{
            "in": in_channels, "out": out_channels, "kernel": pair(kernel), "stride": pair(stride),
            "padding": pair(padding), "dilation": pair(dilation), "groups": groups, "bias": bias,
            "padding_mode": padding_mode})

    yield conv("conv2d_3x3_padding_1", (2, 3, 5, 6), 3, 4, 3, padding=1)
    yield conv("conv2d_stride_2", (2, 2, 7, 6), 2, 3, 3, stride=2)
    yield conv("conv2d_padding_zeros_2", (2, 2, 5, 5), 2, 3, 3, padding=2, padding_mode="zeros")
    yield conv("conv2d_padding_reflect_2x1", (2, 2, 5, 6), 2, 3, 3, padding=(2, 1), padding_mode="reflect")
    yield conv("conv2d_padding_replicate_1x2", (1, 3, 4, 5), 3, 2, (3, 2), padding=(1, 2),
               padding_mode="replicate")
    yield conv("conv2d_padding_circular_2", (2, 2, 5, 4), 2, 3, 3, padding=2, padding_mode="circular")
    yield conv("conv2d_dilation_2", (2, 2, 7, 7), 2, 3, 3, dilation=2, padding=1)
    yield conv("conv2d_groups_2", (2, 4, 5, 5), 4, 6, 3, groups=2, padding=1)
    yield conv("conv2d_depthwise_multiplier_2", (2, 3, 6, 5), 3, 6, 3, groups=3, padding=1, stride=(2, 1))
    yield conv("conv2d_no_bias", (2, 3, 5, 5), 3, 2, 2, bias=False)
    yield conv("conv2d_batch_of_one_1x1", (1, 4, 3, 3), 4, 5, 1)


def activation_cases():
    shape = (3, 4, 5)
    yield make_case("relu", "ReLU", shape, 3.0)
    yield make_case("gelu", "GELU", shape, 3.0)
    yield make_case("tanh", "Tanh", shape, 3.0)
    yield make_case("sigmoid", "Sigmoid", shape, 3.0)
    yield make_case("silu", "SiLU", shape, 3.0)
    yield make_case("softplus_default", "Softplus", shape, 3.0, beta=1.0, threshold=20.0)
    # Inputs in [-4, 4) with beta x > 5 for x > 2.5: both sides of the threshold.
    yield make_case("softplus_beta_2_threshold_5", "Softplus", (4, 10), 4.0, beta=2.0, threshold=5.0)
    yield make_case("softplus_beta_half", "Softplus", (2, 6), 30.0, beta=0.5, threshold=10.0)


def pool_cases():
    yield make_case("max_pool2d_2", "MaxPool2d", (2, 3, 4, 6), kernel=2, stride=2, padding=0)
    yield make_case("max_pool2d_3_stride_2_padding_1", "MaxPool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1)
    yield make_case("max_pool2d_2_stride_1", "MaxPool2d", (1, 2, 4, 5), kernel=2, stride=1, padding=0)
    yield make_case("avg_pool2d_2", "AvgPool2d", (2, 3, 4, 6), kernel=2, stride=2, padding=0)
    yield make_case("avg_pool2d_3_stride_2_padding_1", "AvgPool2d", (2, 2, 7, 6), kernel=3, stride=2, padding=1)
    yield make_case("global_avg_pool2d", "GlobalAvgPool2d", (2, 3, 4, 5))


def main():
    torch.set_num_threads(1)  # one summation order, so the file is reproducible
    cases = [case for group in (linear_cases, conv_cases, activation_cases, pool_cases) for case in group()]
    ids = [case["id"] for case in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    header = {"source": "tools/make_nn_layer_reference.py", "torch_version": torch.__version__,
              "dtype": "float64", "loss": "sum(output * weighting)"}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()] + ['"cases": [']
    lines += [json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else "")
              for i, case in enumerate(cases)]
    lines += ["]", "}"]
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(cases)} cases to {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
