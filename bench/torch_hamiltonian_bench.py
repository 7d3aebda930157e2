#!/usr/bin/env python3
"""The workloads of bench/hamiltonian_bench.cpp, run in PyTorch (1.13, CPU).

The HNN of Greydanus et al. 2019 as their code builds it (MLP 2 -> 200 -> 200 -> 1, tanh,
orthogonal weights, no output bias; the field J grad H by torch.autograd.grad with
create_graph=True) and the baseline MLP 2 -> 200 -> 200 -> 2, on a batch of 750 float32
states; Adam at 1e-3. Same methodology as hamiltonian_bench (one untimed warm-up run, then
the minimum, or with --statistic median the median, of --repeat timed runs of a fixed number
of iterations; one thread unless --threads says otherwise) and the same JSON on stdout:
{"threads": N, "repeat": R, "statistic": ..., "results": [...]}. Run it with the PyTorch
1.13 interpreter, /usr/bin/python3. See bench/README.md.
"""
import json
import os
import resource
import sys

# One thread by default, as hamiltonian_bench: OpenBLAS reads its thread count once, when
# torch loads it, so it is set before torch_bench imports torch (which overrides it when
# --threads is given).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_bench import Timer, parse_arguments, torch  # noqa: E402
from torch import nn  # noqa: E402

BATCH = 750  # the HNN paper's spring: 25 trajectories x 30 points


def peak_rss_mb():
    """The process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ms_per_iteration(timer, iterations, step):
    def work():
        for _ in range(iterations):
            step()
    return timer.seconds(work) / iterations * 1e3


def mlp(inputs, outputs):
    """2 -> 200 -> 200 -> outputs, tanh, orthogonal weights, no output bias (the paper's MLP)."""
    layers = [nn.Linear(inputs, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(), nn.Linear(200, outputs, bias=False)]
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight)
    return nn.Sequential(*layers)


class HNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = mlp(2, 1)

    def forward(self, x):
        """The field (dH/dp, -dH/dq) of H = mlp(q, p), differentiable in the weights."""
        if not x.requires_grad:
            x = x.detach().requires_grad_()
        h = self.mlp(x).squeeze(1)
        dh = torch.autograd.grad(h, x, torch.ones_like(h), create_graph=True)[0]
        return torch.cat([dh[:, 1:], -dh[:, :1]], dim=1)


def spring_batch():
    """States uniform in [-1, 1]^2 and the spring's field (2p, -2q) as targets."""
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(BATCH, 2, generator=gen) * 2 - 1
    dxdt = torch.cat([2 * x[:, 1:], -2 * x[:, :1]], dim=1)
    return x, dxdt


def bench_adam_step(timer, model):
    """zero_grad, loss = mean |model(x) - dxdt|^2, backward, Adam (lr 1e-3) step."""
    x, dxdt = spring_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)  # drops the gradients, as symgrad's zero_grad does
        ((model(x) - dxdt) ** 2).mean().backward()
        optimizer.step()
    return ms_per_iteration(timer, 20, step)


def bench_hnn_field(timer):
    """The HNN's field alone, recorded for a later backward (create_graph), then dropped."""
    model = HNN()
    x, _ = spring_batch()
    return ms_per_iteration(timer, 20, lambda: model(x))


# name, ms per iteration (in hamiltonian_bench.cpp's order)
WORKLOADS = [
    ("hnn_2_200_200_1_b750_adam_step", lambda t: bench_adam_step(t, HNN())),
    ("mlp_field_2_200_200_2_b750_adam_step", lambda t: bench_adam_step(t, mlp(2, 2))),
    ("hnn_2_200_200_1_b750_field", bench_hnn_field),
]


def main():
    statistic_given = any(arg == "--statistic" or arg.startswith("--statistic=") for arg in sys.argv)
    args = parse_arguments(__doc__.splitlines()[0])
    torch.set_num_threads(args.threads or 1)
    statistic = args.statistic if statistic_given else "min"
    torch.manual_seed(0)
    timer = Timer(args.repeat, statistic)
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
                      "statistic": statistic, "results": results}, indent=1))


if __name__ == "__main__":
    main()
