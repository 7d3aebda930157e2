#!/usr/bin/env python3
"""The workloads of bench/engine_bench.cpp, run in PyTorch (1.13, CPU).

Same sizes, same byte and flop counting, same methodology (one untimed warm-up
run, then the median, or with --statistic min the minimum, of --repeat timed runs
with time.perf_counter), same JSON on stdout:
{"threads": N, "repeat": R, "statistic": args.statistic, "results": [...]}.
Progress goes to stderr. See bench/README.md for what each number means.
"""
import argparse
import json
import os
import statistics
import sys
import time


def _threads_from_argv():
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return None


# Debian's torch calls the system BLAS (OpenBLAS), whose own thread pool ignores
# torch.set_num_threads; it reads OPENBLAS_NUM_THREADS once, when it is loaded. Set it
# before importing torch so both sides of the comparison use the same thread count.
if _threads_from_argv() is not None:
    os.environ["OPENBLAS_NUM_THREADS"] = _threads_from_argv()
    os.environ["OMP_NUM_THREADS"] = _threads_from_argv()

import torch  # noqa: E402

STREAM_ELEMENTS = 1 << 24  # 16M floats = 64 MB
MATMUL_SIZE = 1024
TINY_OP_CALLS_PER_REPEAT = 200_000  # 1e6 calls at the default 5 repeats


class Timer:
    """Runs work() once untimed, then `repeats` timed runs, reduced to one number by the
    median (robust to the odd slow run) or the minimum (the least disturbed run)."""

    def __init__(self, repeats, statistic):
        self.repeats = repeats
        self.statistic = statistic

    def seconds(self, work):
        work()
        seconds = []
        for _ in range(self.repeats):
            start = time.perf_counter()
            work()
            seconds.append(time.perf_counter() - start)
        return min(seconds) if self.statistic == "min" else statistics.median(seconds)


def gigabytes_per_second(nbytes, seconds):
    return nbytes / seconds / 1e9


def gigaflops(flops, seconds):
    return flops / seconds / 1e9


def generator(seed):
    return torch.Generator().manual_seed(seed)


def uniform(n, low, high, seed):
    return torch.empty(n, dtype=torch.float32).uniform_(low, high, generator=generator(seed))


# ---- streaming kernels (GB/s; bytes read + written by one call) ----------------------

def bench_copy(timer):
    # Both buffers are written once first so no page fault lands inside the timing.
    src = torch.ones(STREAM_ELEMENTS, dtype=torch.float32)
    dst = torch.zeros(STREAM_ELEMENTS, dtype=torch.float32)
    t = timer.seconds(lambda: dst.copy_(src))
    return gigabytes_per_second(2 * STREAM_ELEMENTS * 4, t)


def bench_unary(timer, op):
    x = uniform(STREAM_ELEMENTS, -2.0, 2.0, seed=1)
    t = timer.seconds(lambda: op(x))
    return gigabytes_per_second(2 * STREAM_ELEMENTS * 4, t)


def bench_add(timer):
    a = uniform(STREAM_ELEMENTS, -1.0, 1.0, seed=2)
    b = uniform(STREAM_ELEMENTS, -1.0, 1.0, seed=3)
    t = timer.seconds(lambda: torch.add(a, b))
    return gigabytes_per_second(3 * STREAM_ELEMENTS * 4, t)


def bench_unary_kernel(timer, op):
    """The same op writing into an output allocated once, outside the timing (out=)."""
    x = uniform(STREAM_ELEMENTS, -2.0, 2.0, seed=1)
    y = torch.zeros(STREAM_ELEMENTS, dtype=torch.float32)
    t = timer.seconds(lambda: op(x, out=y))
    return gigabytes_per_second(2 * STREAM_ELEMENTS * 4, t)


def bench_add_kernel(timer):
    a = uniform(STREAM_ELEMENTS, -1.0, 1.0, seed=2)
    b = uniform(STREAM_ELEMENTS, -1.0, 1.0, seed=3)
    out = torch.zeros(STREAM_ELEMENTS, dtype=torch.float32)
    t = timer.seconds(lambda: torch.add(a, b, out=out))
    return gigabytes_per_second(3 * STREAM_ELEMENTS * 4, t)


def bench_sum(timer):
    x = uniform(STREAM_ELEMENTS, -1.0, 1.0, seed=4)
    t = timer.seconds(lambda: torch.sum(x))
    return gigabytes_per_second(STREAM_ELEMENTS * 4, t)


# ---- matmul (GFLOP/s = 2 n^3 / t) ------------------------------------------------------

def bench_matmul(timer, dtype):
    gen = generator(5)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, dtype=dtype, generator=gen)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, dtype=dtype, generator=gen)
    t = timer.seconds(lambda: torch.matmul(a, b))
    return gigaflops(2 * MATMUL_SIZE ** 3, t)


# ---- latency ---------------------------------------------------------------------------

def bench_tiny_op_overhead(timer):
    """Microseconds per add of two 8-element tensors that require grad, called from Python."""
    gen = generator(6)
    a = torch.randn(8, generator=gen).requires_grad_()
    b = torch.randn(8, generator=gen).requires_grad_()

    def work():
        for _ in range(TINY_OP_CALLS_PER_REPEAT):
            torch.add(a, b)

    return timer.seconds(work) / TINY_OP_CALLS_PER_REPEAT * 1e6


def bench_conv2d_forward_backward(timer, batch, channels, size, groups):
    """Milliseconds for conv2d forward plus input and weight gradients (3x3, padding 1,
    no bias), with a fixed random output gradient, as if the loss were sum(y * g)."""
    gen = generator(7)
    x = torch.randn(batch, channels, size, size, generator=gen).requires_grad_()
    w = torch.randn(channels, channels // groups, 3, 3, generator=gen).requires_grad_()
    g = torch.randn(batch, channels, size, size, generator=gen)

    def work():
        y = torch.nn.functional.conv2d(x, w, None, padding=1, groups=groups)
        torch.autograd.grad([y], [x, w], [g])

    return timer.seconds(work) * 1e3


BENCHMARKS = [
    ("copy_f32_16M", "GB/s", bench_copy),
    ("tanh_f32_16M", "GB/s", lambda t: bench_unary(t, torch.tanh)),
    ("exp_f32_16M", "GB/s", lambda t: bench_unary(t, torch.exp)),
    ("add_f32_16M", "GB/s", bench_add),
    ("sum_f32_16M", "GB/s", bench_sum),
    ("tanh_f32_16M_kernel", "GB/s", lambda t: bench_unary_kernel(t, torch.tanh)),
    ("exp_f32_16M_kernel", "GB/s", lambda t: bench_unary_kernel(t, torch.exp)),
    ("add_f32_16M_kernel", "GB/s", bench_add_kernel),
    ("matmul_f32_1024", "GFLOP/s", lambda t: bench_matmul(t, torch.float32)),
    ("matmul_f64_1024", "GFLOP/s", lambda t: bench_matmul(t, torch.float64)),
    ("tiny_op_overhead", "us", bench_tiny_op_overhead),
    ("conv2d_3x3_b64_c32_28_fwd_bwd", "ms",
     lambda t: bench_conv2d_forward_backward(t, 64, 32, 28, 1)),
    ("depthwise3x3_b64_c128_14_fwd_bwd", "ms",
     lambda t: bench_conv2d_forward_backward(t, 64, 128, 14, 128)),
]


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"wants a positive integer, got {text}")
    return value


def parse_arguments(description):
    """The command line shared with torch_nn_bench.py (and the C++ benches)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=positive_int, help="torch.set_num_threads (default: PyTorch's)")
    parser.add_argument("--repeat", type=positive_int, default=5, help="timed runs per workload")
    parser.add_argument("--statistic", choices=["median", "min"], default="median",
                        help="how the timed runs become one number")
    parser.add_argument("--filter", default="", help="run only workloads whose name contains this")
    return parser.parse_args()


def main():
    args = parse_arguments(__doc__.splitlines()[0])
    if args.threads:
        torch.set_num_threads(args.threads)
    timer = Timer(args.repeat, args.statistic)
    results = []
    for name, unit, run in BENCHMARKS:
        if args.filter not in name:
            continue
        print(f"{name:34s} ", end="", file=sys.stderr, flush=True)
        value = run(timer)
        print(f"{value:10.4g} {unit}", file=sys.stderr)
        results.append({"name": name, "value": float(f"{value:.6g}"), "unit": unit})
    print(json.dumps({"threads": torch.get_num_threads(), "repeat": args.repeat,
                      "statistic": args.statistic, "results": results}, indent=1))


if __name__ == "__main__":
    main()
