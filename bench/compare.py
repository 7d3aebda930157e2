#!/usr/bin/env python3
"""Runs bench/engine_bench and bench/torch_bench.py with the same settings and prints
them side by side.

    python3 bench/compare.py [--engine-bench build/bench/engine_bench] [--threads N]
                             [--repeat R] [--statistic median|min] [--filter SUBSTR]
                             [--json PATH]

ratio is oriented so that > 1 means symgrad is better: symgrad / pytorch for
throughputs (GB/s, GFLOP/s), pytorch / symgrad for times (ms, us). For the
streaming kernels, "of copy" is each number as a fraction of the same program's
copy_f32_16M, the machine's streaming limit. This script itself needs no torch:
it runs torch_bench.py with an interpreter that has it (see --python).
"""
import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TIME_UNITS = {"ms", "us", "s"}  # lower is better; every other unit is a throughput
COPY = "copy_f32_16M"
DIRECT_SUFFIX = "_openblas_direct"


def python_with_torch():
    """This interpreter if it can import torch, else the system one (Debian's python3-torch
    lives there, and a pyenv or venv python3 earlier on PATH usually lacks it)."""
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and subprocess.run([candidate, "-c", "import torch"],
                                        capture_output=True).returncode == 0:
            return candidate
    sys.exit("compare.py: no python with torch found; pass --python")


def run_json(command):
    print("running:", " ".join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)  # progress -> our stderr
    if done.returncode != 0:
        print(f"compare.py: {command[0]} exited with {done.returncode}; "
              "using the numbers it printed", file=sys.stderr)
    return json.loads(done.stdout)


def by_name(report):
    return {r["name"]: r for r in report["results"]}


def ratio(unit, symgrad, pytorch):
    if symgrad is None or pytorch is None or symgrad == 0 or pytorch == 0:
        return None
    return pytorch / symgrad if unit in TIME_UNITS else symgrad / pytorch


def build_rows(engine, torch):
    """One row per workload, in engine_bench's order, then any only PyTorch ran."""
    engine_results, torch_results = by_name(engine), by_name(torch)
    names = list(engine_results) + [n for n in torch_results if n not in engine_results]
    engine_copy = engine_results.get(COPY, {}).get("value")
    torch_copy = torch_results.get(COPY, {}).get("value")
    rows = []
    for name in names:
        entry = engine_results.get(name) or torch_results[name]
        unit = entry["unit"]
        symgrad = engine_results.get(name, {}).get("value")
        pytorch = torch_results.get(name, {}).get("value")
        row = {"name": name, "unit": unit, "symgrad": symgrad, "pytorch": pytorch,
               "ratio": ratio(unit, symgrad, pytorch)}
        if unit == "GB/s" and name != COPY:
            row["symgrad_of_copy"] = symgrad / engine_copy if symgrad and engine_copy else None
            row["pytorch_of_copy"] = pytorch / torch_copy if pytorch and torch_copy else None
        if name.endswith(DIRECT_SUFFIX):
            through_symgrad = engine_results.get(name[: -len(DIRECT_SUFFIX)], {}).get("value")
            if through_symgrad and symgrad:
                row["symgrad_matmul_of_direct"] = through_symgrad / symgrad
        rows.append(row)
    return rows


def fmt(value, width, spec=".4g"):
    """value right-aligned in `width` columns; '-' when a side has no number."""
    return format("-" if value is None else format(value, spec), f">{width}")


def print_table(rows, engine, torch):
    print(f"symgrad threads={engine['threads']}, pytorch threads={torch['threads']}, "
          f"{engine.get('statistic', 'median')} of {engine.get('repeat', '?')} repeats")
    header = (f"{'name':34s} {'symgrad':>10s} {'pytorch':>10s} {'unit':8s} {'ratio':>7s}"
              f" {'symgrad of copy':>16s} {'pytorch of copy':>16s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        of_copy = ""
        if "symgrad_of_copy" in r:
            of_copy = f" {fmt(r['symgrad_of_copy'], 16, '.2f')} {fmt(r['pytorch_of_copy'], 16, '.2f')}"
        print(f"{r['name']:34s} {fmt(r['symgrad'], 10)} {fmt(r['pytorch'], 10)} "
              f"{r['unit']:8s} {fmt(r['ratio'], 7, '.2f')}{of_copy}")
    direct = [r for r in rows if "symgrad_matmul_of_direct" in r]
    if direct:
        print("\nsymgrad::matmul as a fraction of a bare cblas call (same run; 0.95 = within 5%):")
        for r in direct:
            print(f"  {r['name'][: -len(DIRECT_SUFFIX)]:32s} {r['symgrad_matmul_of_direct']:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-bench", default="build/bench/engine_bench",
                        help="path to the engine_bench executable (default: %(default)s)")
    parser.add_argument("--threads", type=int, help="thread count for both (default: each one's own)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per workload")
    parser.add_argument("--statistic", choices=["median", "min"], default="median",
                        help="how the timed runs become one number (min: least disturbed run)")
    parser.add_argument("--filter", default="", help="only workloads whose name contains this")
    parser.add_argument("--python", help="interpreter for torch_bench.py (default: one that has torch)")
    parser.add_argument("--json", metavar="PATH", help="also write both reports and the rows here")
    args = parser.parse_args()

    if not os.path.exists(args.engine_bench):
        sys.exit(f"compare.py: {args.engine_bench} not found; build it with "
                 "cmake --build <build dir> --target engine_bench, or pass --engine-bench")
    shared = ["--repeat", str(args.repeat), "--statistic", args.statistic]
    if args.threads:
        shared += ["--threads", str(args.threads)]
    if args.filter:
        shared += ["--filter", args.filter]

    engine = run_json([args.engine_bench] + shared)
    torch = run_json([args.python or python_with_torch(), os.path.join(HERE, "torch_bench.py")] + shared)
    rows = build_rows(engine, torch)
    print_table(rows, engine, torch)
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"symgrad": engine, "pytorch": torch, "rows": rows}, out, indent=1)
            out.write("\n")


if __name__ == "__main__":
    main()
