#!/usr/bin/env python3
"""The training-step workloads of bench/nn_bench.cpp, run in PyTorch (1.13, CPU).

Same models, batch sizes and methodology (one untimed warm-up run, then the median, or
with --statistic min the minimum, of --repeat timed runs, each of a fixed number of
training steps), same JSON on stdout:
{"threads": N, "repeat": R, "statistic": ..., "results": [...]}.
Besides ms per step, each workload reports the process's peak resident memory after
it ran (getrusage ru_maxrss, MB). Progress goes to stderr. See bench/README.md.
"""
import json
import os
import resource
import sys

# torch_bench.py sets the OpenBLAS/OpenMP thread counts from --threads before it
# imports torch (Debian's torch calls the system OpenBLAS, whose pool reads
# OPENBLAS_NUM_THREADS once, at load time); importing it first does the same here.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import Timer, parse_arguments, torch  # noqa: E402
from torch import nn  # noqa: E402


def peak_rss_mb():
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10))


def bench_sgd_step(timer, model, input_shape, steps_per_run):
    """Milliseconds per training step: forward, cross-entropy, backward, SGD with
    momentum. The batch is fixed random data (speed does not depend on the values)."""
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(*input_shape, generator=gen)
    y = torch.randint(0, 10, (input_shape[0],), generator=gen)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def work():
        for _ in range(steps_per_run):
            # set_to_none: drop the gradients instead of zero-filling them (the faster
            # choice, and what symgrad's zero_grad does).
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()

    return timer.seconds(work) / steps_per_run * 1e3


# name, model, input shape, training steps per timed run
WORKLOADS = [
    ("mlp_784_256_256_10_b128_sgd_step", mlp, (128, 784), 20),
    ("cnn_fmnist_b64_sgd_step", cnn, (64, 1, 28, 28), 4),
]


def main():
    args = parse_arguments(__doc__.splitlines()[0])

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    timer = Timer(args.repeat, args.statistic)
    results = []
    for name, build, shape, steps in WORKLOADS:
        if args.filter not in name:
            continue
        print(f"{name:34s} ", end="", file=sys.stderr, flush=True)
        ms = bench_sgd_step(timer, build(), shape, steps)
        rss = peak_rss_mb()
        print(f"{ms:10.4g} ms  peak RSS {rss:.1f} MB", file=sys.stderr)
        results.append({"name": name, "value": float(f"{ms:.6g}"), "unit": "ms"})
        results.append({"name": name + "_peak_rss", "value": float(f"{rss:.6g}"), "unit": "MB"})
    print(json.dumps({"threads": torch.get_num_threads(), "repeat": args.repeat,
                      "statistic": args.statistic, "results": results}, indent=1))


if __name__ == "__main__":
    main()
