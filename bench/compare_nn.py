#!/usr/bin/env python3
"""Runs a C++ benchmark suite and its PyTorch twin with the same settings and prints
them side by side: bench/nn_bench with bench/torch_nn_bench.py (--suite nn, the
default) or bench/pde_bench with bench/torch_pde_bench.py (--suite pde).

    python3 bench/compare_nn.py [--suite nn|pde] [--bench build/bench/<suite>_bench]
                                [--threads N] [--repeat R] [--statistic median|min]
                                [--filter SUBSTR] [--json PATH]

Every workload runs in a process of its own (for each program), so its "_peak_rss"
row is that workload's peak resident memory, library and interpreter included.
ratio > 1 means symgrad is better: pytorch / symgrad for both times (ms) and memory
(MB). Like compare.py, this script needs no torch itself; the helpers that find a
python with torch and run a program for its JSON are compare.py's.
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare import python_with_torch, run_json  # noqa: E402

LOWER_IS_BETTER = {"ms", "us", "s", "MB"}
# Per suite: the C++ program's default path, its PyTorch script, and their workloads in order.
SUITES = {
    "nn": ("build/bench/nn_bench", "torch_nn_bench.py",
           ["mlp_784_256_256_10_b128_sgd_step", "cnn_fmnist_b64_sgd_step"]),
    "pde": ("build/bench/pde_bench", "torch_pde_bench.py",
            ["pde_block_c32_14_b128_fwd_bwd", "pde_resnet_B_b128_train_step",
             "pde_depthwise_w128_14_b128_fwd_bwd", "pde_depthwise_s2_w64_28_b128_fwd_bwd",
             "pde_conv1x1_32_256_14_b128_fwd_bwd", "pde_conv1x1_256_32_14_b128_fwd_bwd",
             "pde_coupling_w128_14_b128_fwd_bwd", "pde_batchnorm_256_14_b128_fwd_bwd",
             "pde_hardball_c32_14_b128_fwd_bwd"]),
    "hamiltonian": ("build/bench/hamiltonian_bench", "torch_hamiltonian_bench.py",
                    ["hnn_2_200_200_1_b750_adam_step", "mlp_field_2_200_200_2_b750_adam_step",
                     "hnn_2_200_200_1_b750_field"]),
}


def ratio(unit, symgrad, pytorch):
    if not symgrad or not pytorch:
        return None
    return pytorch / symgrad if unit in LOWER_IS_BETTER else symgrad / pytorch


def run_each(command, shared, workloads):
    """One process per workload; the reports merged into one."""
    merged = None
    for name in workloads:
        report = run_json(command + shared + ["--filter", name])
        if merged is None:
            merged = dict(report, results=[])
        merged["results"] += report["results"]
    return merged


def build_rows(symgrad, torch):
    ours = {r["name"]: r for r in symgrad["results"]}
    theirs = {r["name"]: r for r in torch["results"]}
    rows = []
    for name in list(ours) + [n for n in theirs if n not in ours]:
        unit = (ours.get(name) or theirs[name])["unit"]
        s, p = ours.get(name, {}).get("value"), theirs.get(name, {}).get("value")
        rows.append({"name": name, "unit": unit, "symgrad": s, "pytorch": p, "ratio": ratio(unit, s, p)})
    return rows


def fmt(value, width, spec=".4g"):
    return format("-" if value is None else format(value, spec), f">{width}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", choices=sorted(SUITES), default="nn",
                        help="which benchmark pair to run (default: %(default)s)")
    parser.add_argument("--bench", "--nn-bench", dest="bench",
                        help="path to the C++ executable (default: build/bench/<suite>_bench)")
    parser.add_argument("--threads", type=int, help="thread count for both (default: each one's own)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per workload")
    parser.add_argument("--statistic", choices=["median", "min"], default="median",
                        help="how the timed runs become one number (min: least disturbed run)")
    parser.add_argument("--filter", default="", help="only workloads whose name contains this")
    parser.add_argument("--python", help="interpreter for the PyTorch script (default: one that has torch)")
    parser.add_argument("--json", metavar="PATH", help="also write both reports and the rows here")
    args = parser.parse_args()

    default_bench, torch_script, all_workloads = SUITES[args.suite]
    bench = args.bench or default_bench
    if not os.path.exists(bench):
        sys.exit(f"compare_nn.py: {bench} not found; build it with cmake --build <build dir> "
                 f"--target {os.path.basename(default_bench)}, or pass --bench")
    shared = ["--repeat", str(args.repeat), "--statistic", args.statistic]
    if args.threads:
        shared += ["--threads", str(args.threads)]
    workloads = [w for w in all_workloads if args.filter in w]

    symgrad = run_each([bench], shared, workloads)
    torch = run_each([args.python or python_with_torch(), os.path.join(HERE, torch_script)],
                     shared, workloads)
    rows = build_rows(symgrad, torch)

    print(f"symgrad threads={symgrad['threads']}, pytorch threads={torch['threads']}, "
          f"{symgrad.get('statistic', 'median')} of {symgrad.get('repeat', '?')} repeats")
    header = f"{'name':42s} {'symgrad':>10s} {'pytorch':>10s} {'unit':5s} {'ratio':>7s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['name']:42s} {fmt(r['symgrad'], 10)} {fmt(r['pytorch'], 10)} {r['unit']:5s} "
              f"{fmt(r['ratio'], 7, '.2f')}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"symgrad": symgrad, "pytorch": torch, "rows": rows}, out, indent=1)
            out.write("\n")


if __name__ == "__main__":
    main()
