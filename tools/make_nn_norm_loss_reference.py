#!/usr/bin/python3
"""Writes tests/data/nn_norm_loss_reference.json: PyTorch 1.13 values for symgrad's BatchNorm,
LayerNorm and loss functions (tests/nn/test_batchnorm.cpp, test_layernorm.cpp, test_loss.cpp).

Everything is float64. Each output is weighted by a fixed random tensor R of its shape and the
gradients are those of  L = sum(output * R)  (a plain sum would hide BatchNorm's input gradient,
which is orthogonal to constants).

* batchnorm: a module with fixed weight and bias runs three training steps on three batches
  (output, gradients, running statistics after the step), then one eval-mode step on a fourth.
* layernorm: one forward and backward.
* losses: each loss with each reduction; cross-entropy also with label smoothing and with
  logits of magnitude 1e4.

Every random number comes from a torch.Generator seeded with the CRC-32 of the case id, so
the file is reproduced byte for byte by re-running the script, and adding a case does not
change the others. Run from anywhere:  /usr/bin/python3 tools/make_nn_norm_loss_reference.py
"""
import json
import pathlib
import zlib

import torch
import torch.nn.functional as F

OUTPUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "nn_norm_loss_reference.json"
torch.set_default_dtype(torch.float64)


def packed(t):
    return {"shape": list(t.shape), "values": [float(v) for v in t.detach().double().reshape(-1).tolist()]}


def generator(case_id):
    return torch.Generator().manual_seed(zlib.crc32(case_id.encode()))


def uniform(gen, shape, low=-1.0, high=1.0):
    return torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low


def channel_batch(gen, shape):
    """A batch whose channels (axis 1) have different means and spreads, as real activations do."""
    channels = shape[1]
    view = [1, channels] + [1] * (len(shape) - 2)
    offset = uniform(gen, [channels], -2.0, 2.0).reshape(view)
    spread = uniform(gen, [channels], 0.5, 3.0).reshape(view)
    return uniform(gen, shape) * spread + offset


def weighted_backward(out, gen, leaves):
    """Gradients of sum(out * R) for a random R; returns (R, grads)."""
    weights = uniform(gen, list(out.shape))
    grads = torch.autograd.grad((out * weights).sum(), leaves)
    return weights, grads


# ---- BatchNorm --------------------------------------------------------------------------

def batchnorm_case(case_id, module, shape, momentum=0.1, affine=True, track_running_stats=True, eps=1e-5):
    gen = generator(case_id)
    cls = {"BatchNorm1d": torch.nn.BatchNorm1d, "BatchNorm2d": torch.nn.BatchNorm2d}[module]
    channels = shape[1]
    bn = cls(channels, eps=eps, momentum=momentum, affine=affine, track_running_stats=track_running_stats)
    case = {"id": case_id, "module": module, "features": channels, "eps": eps, "momentum": momentum,
            "affine": affine, "track_running_stats": track_running_stats}
    if affine:
        with torch.no_grad():
            bn.weight.copy_(uniform(gen, [channels], 0.5, 1.5))
            bn.bias.copy_(uniform(gen, [channels], -0.5, 0.5))
        case["weight"] = packed(bn.weight)
        case["bias"] = packed(bn.bias)

    def step(x):
        x = x.clone().requires_grad_()
        out = bn(x)
        leaves = [x] + ([bn.weight, bn.bias] if affine else [])
        weights, grads = weighted_backward(out, gen, leaves)
        record = {"input": packed(x), "output": packed(out), "weights": packed(weights),
                  "grad_input": packed(grads[0])}
        if affine:
            record["grad_weight"] = packed(grads[1])
            record["grad_bias"] = packed(grads[2])
        if track_running_stats:
            record["running_mean"] = packed(bn.running_mean)
            record["running_var"] = packed(bn.running_var)
        return record

    bn.train()
    case["train_steps"] = [step(channel_batch(gen, shape)) for _ in range(3)]
    bn.eval()
    case["eval_step"] = step(channel_batch(gen, shape))
    return case


def batchnorm_cases():
    return [
        batchnorm_case("bn1d_2d_input", "BatchNorm1d", [6, 4]),
        batchnorm_case("bn1d_3d_input_momentum_0.3", "BatchNorm1d", [4, 3, 5], momentum=0.3),
        batchnorm_case("bn1d_no_affine", "BatchNorm1d", [5, 3], affine=False),
        batchnorm_case("bn2d", "BatchNorm2d", [4, 3, 5, 4]),
        batchnorm_case("bn2d_momentum_0.3_eps_1e-3", "BatchNorm2d", [3, 2, 4, 5], momentum=0.3, eps=1e-3),
        batchnorm_case("bn2d_no_affine", "BatchNorm2d", [2, 3, 3, 4], affine=False),
        batchnorm_case("bn2d_no_running_stats", "BatchNorm2d", [3, 2, 3, 3], track_running_stats=False),
    ]


# ---- LayerNorm --------------------------------------------------------------------------

def layernorm_case(case_id, shape, normalized_shape, affine=True, eps=1e-5):
    gen = generator(case_id)
    ln = torch.nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=affine)
    case = {"id": case_id, "normalized_shape": list(normalized_shape), "eps": eps, "affine": affine}
    if affine:
        with torch.no_grad():
            ln.weight.copy_(uniform(gen, list(normalized_shape), 0.5, 1.5))
            ln.bias.copy_(uniform(gen, list(normalized_shape), -0.5, 0.5))
        case["weight"] = packed(ln.weight)
        case["bias"] = packed(ln.bias)
    x = (uniform(gen, shape) * 2.0 + 0.5).requires_grad_()
    out = ln(x)
    leaves = [x] + ([ln.weight, ln.bias] if affine else [])
    weights, grads = weighted_backward(out, gen, leaves)
    case.update({"input": packed(x), "output": packed(out), "weights": packed(weights),
                 "grad_input": packed(grads[0])})
    if affine:
        case["grad_weight"] = packed(grads[1])
        case["grad_bias"] = packed(grads[2])
    return case


def layernorm_cases():
    return [
        layernorm_case("ln_last_axis", [3, 4, 5], [5]),
        layernorm_case("ln_last_two_axes", [2, 3, 4, 5], [4, 5]),
        layernorm_case("ln_no_affine", [4, 6], [6], affine=False),
        layernorm_case("ln_eps_0.1", [2, 3, 4], [3, 4], eps=0.1),
    ]


# ---- losses -----------------------------------------------------------------------------

REDUCTIONS = ["mean", "sum", "none"]


def regression_case(loss, reduction, delta=None):
    suffix = f"_delta_{delta}" if delta is not None else ""
    case_id = f"{loss}_{reduction}{suffix}"
    gen = generator(case_id)
    pred = uniform(gen, [4, 3], -2.0, 2.0).requires_grad_()
    target = uniform(gen, [4, 3], -2.0, 2.0).requires_grad_()
    if loss == "mse":
        out = F.mse_loss(pred, target, reduction=reduction)
    elif loss == "l1":
        out = F.l1_loss(pred, target, reduction=reduction)
    else:
        out = F.huber_loss(pred, target, reduction=reduction, delta=delta)
    weights, grads = weighted_backward(out, gen, [pred, target])
    case = {"id": case_id, "loss": loss, "reduction": reduction, "pred": packed(pred),
            "target": packed(target), "output": packed(out), "weights": packed(weights),
            "grad_pred": packed(grads[0]), "grad_target": packed(grads[1])}
    if delta is not None:
        case["delta"] = delta
    return case


def classification_case(loss, reduction, label_smoothing=0.0, scale=3.0, batch=5, classes=4):
    kind = f"{loss}_{reduction}"
    if label_smoothing:
        kind += f"_smoothing_{label_smoothing}"
    if scale > 100:
        kind += "_extreme_logits"
    gen = generator(kind)
    labels = torch.randint(0, classes, [batch], generator=gen)
    logits = uniform(gen, [batch, classes]) * scale
    if scale > 100:
        # Rows that overflow a naive exp: a dominant correct class, a dominant wrong class,
        # a tie between giants, and huge negative values.
        logits[0, labels[0]] = scale
        logits[1, (labels[1] + 1) % classes] = scale
        logits[2, :] = scale
        logits[3, :] = -scale
    logits.requires_grad_()
    if loss == "cross_entropy":
        out = F.cross_entropy(logits, labels, reduction=reduction, label_smoothing=label_smoothing)
        inputs = logits
    else:
        log_probs = F.log_softmax(logits.detach(), dim=1).requires_grad_()
        out = F.nll_loss(log_probs, labels, reduction=reduction)
        inputs = log_probs
    weights, grads = weighted_backward(out, gen, [inputs])
    return {"id": kind, "loss": loss, "reduction": reduction, "label_smoothing": label_smoothing,
            "input": packed(inputs), "labels": labels.tolist(), "output": packed(out),
            "weights": packed(weights), "grad_input": packed(grads[0])}


def loss_cases():
    cases = []
    for reduction in REDUCTIONS:
        cases.append(regression_case("mse", reduction))
        cases.append(regression_case("l1", reduction))
        cases.append(regression_case("huber", reduction, delta=1.0))
        cases.append(regression_case("huber", reduction, delta=0.5))
        cases.append(classification_case("cross_entropy", reduction))
        cases.append(classification_case("cross_entropy", reduction, label_smoothing=0.1))
        cases.append(classification_case("cross_entropy", reduction, scale=1e4))
        cases.append(classification_case("cross_entropy", reduction, label_smoothing=0.1, scale=1e4))
        cases.append(classification_case("nll", reduction))
    return cases


def main():
    sections = {"batchnorm": batchnorm_cases(), "layernorm": layernorm_cases(), "losses": loss_cases()}
    header = {"source": "tools/make_nn_norm_loss_reference.py", "torch_version": torch.__version__,
              "loss": "gradients are of sum(output * weights)"}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    for s, (name, cases) in enumerate(sections.items()):
        lines.append(f"{json.dumps(name)}: [")
        lines += [json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else "")
                  for i, case in enumerate(cases)]
        lines.append("]" + ("," if s + 1 < len(sections) else ""))
    lines.append("}")
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUTPUT} ({sum(len(c) for c in sections.values())} cases)")


if __name__ == "__main__":
    main()
