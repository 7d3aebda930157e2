#!/usr/bin/python3
"""Writes tests/data/optim_reference.json: PyTorch 1.13 values for symgrad's optimizers,
learning-rate schedules and gradient clipping (tests/nn/test_optim.cpp, test_schedule.cpp).

optimizers: three parameters with fixed values and a fixed sequence of three gradients
  per parameter (the last parameter has no gradient at the first step, so its state
  starts a step late). Each case gives the optimizer spec in make_optimizer's JSON
  form and, for float64 and float32 runs, the parameters after every step and the
  final per-parameter state under symgrad's state names.
schedules: make_schedule specs with base_lr and total_steps, and the lr PyTorch's
  matching scheduler sets before each optimizer step.
clip: gradients, max_norm, the norm clip_grad_norm_ returns and the clipped gradients.

Values come from a torch.Generator with a fixed seed, so re-running reproduces the file
byte for byte. Run from anywhere:  /usr/bin/python3 tools/make_optim_reference.py
"""
import json
import pathlib
import warnings

import torch
from torch.optim import lr_scheduler

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "optim_reference.json"
SHAPES = [[2, 3], [3], [2, 2]]
STEPS = 3
LATE_PARAM = 2  # has no gradient at step 0


def uniform(gen, shape, low, high):
    return (low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64))


def make_problem():
    gen = torch.Generator().manual_seed(2024)
    params = [uniform(gen, s, -1.0, 1.0) for s in SHAPES]
    grads = []
    for step in range(STEPS):
        grads.append([None if (step == 0 and i == LATE_PARAM) else uniform(gen, s, -2.0, 2.0)
                      for i, s in enumerate(SHAPES)])
    return params, grads


def flat(t):
    return None if t is None else t.detach().reshape(-1).tolist()


def build_optimizer(spec, params):
    kind = spec["type"]
    if kind == "sgd":
        return torch.optim.SGD(params, lr=spec["lr"], momentum=spec.get("momentum", 0.0),
                               dampening=spec.get("dampening", 0.0),
                               weight_decay=spec.get("weight_decay", 0.0),
                               nesterov=spec.get("nesterov", False))
    betas = tuple(spec.get("betas", (0.9, 0.999)))
    eps = spec.get("eps", 1e-8)
    if kind == "adam":
        return torch.optim.Adam(params, lr=spec["lr"], betas=betas, eps=eps,
                                weight_decay=spec.get("weight_decay", 0.0))
    return torch.optim.AdamW(params, lr=spec["lr"], betas=betas, eps=eps,
                             weight_decay=spec.get("weight_decay", 1e-2))


def run_optimizer(spec, dtype):
    values, grads = make_problem()
    params = [v.to(dtype).requires_grad_() for v in values]
    opt = build_optimizer(spec, params)
    after_steps = []
    for step in range(STEPS):
        for p, g in zip(params, grads[step]):
            p.grad = None if g is None else g.to(dtype)
        opt.step()
        after_steps.append([flat(p) for p in params])
    state = {}
    for i, p in enumerate(params):
        for name in ("momentum_buffer", "exp_avg", "exp_avg_sq"):
            if opt.state[p].get(name) is not None:
                state[f"{name}.{i}"] = flat(opt.state[p][name])
    return {"params": after_steps, "state": state}


OPTIMIZER_CASES = {
    "sgd": {"type": "sgd", "lr": 0.1},
    "sgd_weight_decay": {"type": "sgd", "lr": 0.1, "weight_decay": 0.05},
    "sgd_momentum": {"type": "sgd", "lr": 0.1, "momentum": 0.9},
    "sgd_dampening": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.3},
    "sgd_nesterov": {"type": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
    "sgd_nesterov_weight_decay": {"type": "sgd", "lr": 0.05, "momentum": 0.8, "nesterov": True,
                                  "weight_decay": 0.01},
    "adam": {"type": "adam", "lr": 0.1},
    "adam_weight_decay": {"type": "adam", "lr": 0.1, "betas": [0.8, 0.95], "eps": 1e-6,
                          "weight_decay": 0.1},
    "adamw": {"type": "adamw", "lr": 0.1, "weight_decay": 0.1},
    "adamw_default_decay": {"type": "adamw", "lr": 0.01, "betas": [0.85, 0.99]},
}


def lr_sequence(make_scheduler, base_lr, steps):
    param = torch.zeros(1, requires_grad=True)  # never has a gradient: step() changes nothing
    opt = torch.optim.SGD([param], lr=base_lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


def schedule_cases():
    cases = []

    def add(name, spec, base_lr, total_steps, make_scheduler, steps=None):
        cases.append({"name": name, "spec": spec, "base_lr": base_lr, "total_steps": total_steps,
                      "lrs": lr_sequence(make_scheduler, base_lr, steps or total_steps)})

    add("step", {"type": "step", "step_size": 3, "gamma": 0.5}, 0.1, 12,
        lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
    add("cosine", {"type": "cosine", "min_lr": 0.001}, 0.1, 10,
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001), steps=11)
    add("cosine_to_zero", {"type": "cosine"}, 0.05, 7,
        lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=7), steps=7)
    add("onecycle", {"type": "onecycle", "max_lr": 0.1}, 0.01, 20,
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=20, cycle_momentum=False))
    add("onecycle_custom",
        {"type": "onecycle", "max_lr": 0.5, "pct_start": 0.25, "div_factor": 10.0,
         "final_div_factor": 100.0}, 0.01, 17,
        lambda o: lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=17, pct_start=0.25,
                                          div_factor=10.0, final_div_factor=100.0,
                                          cycle_momentum=False))
    add("warmup_constant", {"type": "constant", "warmup_steps": 4, "warmup_start_factor": 0.25},
        0.1, 8, lambda o: lr_scheduler.LinearLR(o, start_factor=0.25, total_iters=4))
    add("warmup_cosine",
        {"type": "cosine", "warmup_steps": 5, "warmup_start_factor": 0.1, "min_lr": 0.001}, 0.1, 20,
        lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
                lr_scheduler.CosineAnnealingLR(o, T_max=15, eta_min=0.001)], milestones=[5]))
    add("warmup_step",
        {"type": "step", "step_size": 2, "gamma": 0.7, "warmup_steps": 3}, 0.2, 10,
        lambda o: lr_scheduler.SequentialLR(
            o, [lr_scheduler.LinearLR(o, start_factor=1.0 / 3.0, total_iters=3),
                lr_scheduler.StepLR(o, step_size=2, gamma=0.7)], milestones=[3]))
    return cases


def clip_cases():
    gen = torch.Generator().manual_seed(7)
    grads = [uniform(gen, s, -2.0, 2.0) for s in SHAPES]
    cases = []
    for dtype_name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        for max_norm in (1.5, 100.0):
            params = [torch.zeros(s, dtype=dtype, requires_grad=True) for s in SHAPES]
            for p, g in zip(params, grads):
                p.grad = g.to(dtype).clone()
            params.append(torch.zeros(2, dtype=dtype, requires_grad=True))  # no gradient: skipped
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            cases.append({"dtype": dtype_name, "max_norm": max_norm, "norm": float(norm),
                          "clipped": [flat(p.grad) for p in params[:-1]]})
    return {"grads": [flat(g) for g in grads], "cases": cases}


def main():
    # SequentialLR starts its second scheduler with step(0), which PyTorch warns about.
    warnings.filterwarnings("ignore", message="The epoch parameter")
    values, grads = make_problem()
    reference = {
        "torch_version": torch.__version__,
        "problem": {"shapes": SHAPES, "params": [flat(v) for v in values],
                    "grads": [[flat(g) for g in step] for step in grads]},
        "optimizers": [{"name": name, "spec": spec,
                        "float64": run_optimizer(spec, torch.float64),
                        "float32": run_optimizer(spec, torch.float32)}
                       for name, spec in OPTIMIZER_CASES.items()],
        "schedules": schedule_cases(),
        "clip": clip_cases(),
    }
    OUTPUT.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
