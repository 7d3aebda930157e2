#!/usr/bin/env python3
"""The workloads of bench/pde_bench.cpp, run in PyTorch (1.13, CPU).

The models are tools/torch_pde.py's (the PyTorch twins of pde/, same structure and
parameter names); same shapes and methodology as pde_bench (one untimed warm-up run,
then the median, or with --statistic min the minimum, of --repeat timed runs of a fixed
number of iterations), same JSON on stdout:
{"threads": N, "repeat": R, "statistic": ..., "results": [...]}.
Besides ms per iteration, each workload reports the process's peak resident memory
after it ran (getrusage ru_maxrss, MB). Progress goes to stderr. See bench/README.md.
"""
import json
import math
import os
import resource
import sys

# torch_bench.py sets the OpenBLAS/OpenMP thread counts from --threads before it
# imports torch; importing it first does the same here.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
from torch_bench import Timer, parse_arguments, torch  # noqa: E402
from torch import nn  # noqa: E402
import torch_pde  # noqa: E402

BATCH = 128


def peak_rss_mb():
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ms_per_iteration(timer, iterations, step):
    def work():
        for _ in range(iterations):
            step()
    return timer.seconds(work) / iterations * 1e3


def bench_block(timer):
    """One non-downsampling block, 32 stream channels (w = 128), on [128, 32, 14, 14]:
    forward in training mode, backward of the output's sum."""
    gen = torch.Generator().manual_seed(3)
    block = torch_pde.QuasiLinearBlock(32)
    block.train()
    x = torch.randn(BATCH, 32, 14, 14, generator=gen).requires_grad_()

    def step():
        block.zero_grad(set_to_none=True)
        x.grad = None
        block(x).sum().backward()
    return ms_per_iteration(timer, 4, step)


def bench_train_step(timer):
    """Config B, batch 128 of 1 x 28 x 28: forward, cross-entropy, backward, SGD with momentum."""
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(0)
    model = torch_pde.build_pde_resnet("B")
    model.train()
    x = torch.randn(BATCH, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (BATCH,), generator=gen)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step():
        optimizer.zero_grad(set_to_none=True)  # drops the gradients, as symgrad's zero_grad does
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return ms_per_iteration(timer, 2, step)


def bench_depthwise(timer, w, size, stride):
    """The block's depthwise conv (3x3, groups w, multiplier 2, padding 1) on
    [128, w, size, size]: forward and the gradients of input and weight."""
    gen = torch.Generator().manual_seed(11)
    p = torch.randn(BATCH, w, size, size, generator=gen).requires_grad_()
    weight = torch.randn(2 * w, 1, 3, 3, generator=gen).requires_grad_()

    def conv():
        return nn.functional.conv2d(p, weight, padding=1, stride=stride, groups=w)
    g = torch.randn(conv().shape, generator=gen)
    return ms_per_iteration(timer, 4, lambda: torch.autograd.grad(conv(), (p, weight), g))


def bench_pointwise(timer, cin, cout):
    """A 1x1 convolution (no bias) on [128, cin, 14, 14]: forward, gradients of input and weight."""
    gen = torch.Generator().manual_seed(13)
    x = torch.randn(BATCH, cin, 14, 14, generator=gen).requires_grad_()
    weight = torch.randn(cout, cin, 1, 1, generator=gen).requires_grad_()
    g = torch.randn(BATCH, cout, 14, 14, generator=gen)
    return ms_per_iteration(timer, 4, lambda: torch.autograd.grad(nn.functional.conv2d(x, weight), (x, weight), g))


def bench_coupling(timer):
    """p = a[:, :w] * a[:, w:] on a = [128, 256, 14, 14], with its backward."""
    gen = torch.Generator().manual_seed(17)
    w = 128
    a = torch.randn(BATCH, 2 * w, 14, 14, generator=gen).requires_grad_()
    g = torch.randn(BATCH, w, 14, 14, generator=gen)
    return ms_per_iteration(timer, 4, lambda: torch.autograd.grad(a[:, :w] * a[:, w:], (a,), g))


def bench_batch_norm(timer):
    """Training-mode BatchNorm of [128, 256, 14, 14], with its backward."""
    gen = torch.Generator().manual_seed(19)
    a = torch.randn(BATCH, 256, 14, 14, generator=gen).requires_grad_()
    weight = torch.ones(256, requires_grad=True)
    bias = torch.zeros(256, requires_grad=True)
    g = torch.randn(a.shape, generator=gen)

    def step():
        y = nn.functional.batch_norm(a, None, None, weight, bias, training=True, eps=1e-5)
        torch.autograd.grad(y, (a, weight, bias), g)
    return ms_per_iteration(timer, 4, step)


def bench_hardball(timer):
    """The hardball at a stage entry, [128, 32, 14, 14], r = sqrt(32), with its backward."""
    gen = torch.Generator().manual_seed(23)
    v = torch.randn(BATCH, 32, 14, 14, generator=gen).requires_grad_()
    g = torch.randn(v.shape, generator=gen)
    return ms_per_iteration(timer, 8, lambda: torch.autograd.grad(torch_pde.hardball(v, math.sqrt(32.0)), (v,), g))


# name, ms per iteration (in pde_bench.cpp's order)
WORKLOADS = [
    ("pde_block_c32_14_b128_fwd_bwd", bench_block),
    ("pde_resnet_B_b128_train_step", bench_train_step),
    ("pde_depthwise_w128_14_b128_fwd_bwd", lambda t: bench_depthwise(t, 128, 14, 1)),
    ("pde_depthwise_s2_w64_28_b128_fwd_bwd", lambda t: bench_depthwise(t, 64, 28, 2)),
    ("pde_conv1x1_32_256_14_b128_fwd_bwd", lambda t: bench_pointwise(t, 32, 256)),
    ("pde_conv1x1_256_32_14_b128_fwd_bwd", lambda t: bench_pointwise(t, 256, 32)),
    ("pde_coupling_w128_14_b128_fwd_bwd", bench_coupling),
    ("pde_batchnorm_256_14_b128_fwd_bwd", bench_batch_norm),
    ("pde_hardball_c32_14_b128_fwd_bwd", bench_hardball),
]


def main():
    args = parse_arguments(__doc__.splitlines()[0])
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    timer = Timer(args.repeat, args.statistic)
    results = []
    for name, run in WORKLOADS:
        if args.filter not in name:
            continue
        print(f"{name:40s} ", end="", file=sys.stderr, flush=True)
        ms = run(timer)
        rss = peak_rss_mb()
        print(f"{ms:10.4g} ms  peak RSS {rss:.1f} MB", file=sys.stderr)
        results.append({"name": name, "value": float(f"{ms:.6g}"), "unit": "ms"})
        results.append({"name": name + "_peak_rss", "value": float(f"{rss:.6g}"), "unit": "MB"})
    print(json.dumps({"threads": torch.get_num_threads(), "repeat": args.repeat,
                      "statistic": args.statistic, "results": results}, indent=1))


if __name__ == "__main__":
    main()
