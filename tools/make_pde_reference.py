#!/usr/bin/python3
"""Writes tests/data/pde_block_reference.json: PyTorch 1.13 values for symgrad's pde blocks.

"blocks": each case builds tools/torch_pde.py's QuasiLinearBlock in float64 from "config"
(the fields of symgrad's QuasiLinearBlockConfig), sets every parameter and BatchNorm buffer
to random values ("state", symgrad's names), runs one training-mode forward on "input" and
records the "output", the gradients of  L = sum(output * weighting)  with respect to the
input and every parameter ("grads"), the BatchNorm running statistics after that forward
("running_stats", momentum 0.1, unbiased variance) and an eval-mode forward on the same
input afterwards ("eval_output").

"balls": hardball and softball on one input, with the outputs and input gradients of
sum(output * weighting). The input holds a zero pixel and one exactly on the hardball's
boundary (||v|| = r in floating point), where the derivative is the identity.

Random numbers come from a torch.Generator seeded with the CRC-32 of the case id, and
one thread sums in one order: re-running the script reproduces the file byte for byte.
Run from anywhere:  /usr/bin/python3 tools/make_pde_reference.py
"""
import json
import pathlib
import sys
import zlib

import torch

TOOLS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TOOLS))
import torch_pde  # noqa: E402

OUTPUT = TOOLS.parent / "tests" / "data" / "pde_block_reference.json"


def packed(t):
    return {"shape": list(t.shape), "values": [float(v) for v in t.detach().reshape(-1).tolist()]}


def generator_for(case_id):
    return torch.Generator().manual_seed(zlib.crc32(case_id.encode()))


def draw(gen, shape, low=-1.0, high=1.0):
    """Uniform on [low, high): away from ties and kinks with probability 1."""
    return torch.rand(shape, generator=gen, dtype=torch.float64) * (high - low) + low


def randomize_state(block, gen):
    """Every parameter uniform on [-1, 1) (so the last BN weight is non-zero and the
    coefficient conv is not the identity), running means on [-0.5, 0.5), running
    variances on [0.5, 1.5)."""
    with torch.no_grad():
        for name, t in torch_pde.symgrad_state(block).items():
            if name.endswith("running_mean"):
                t.copy_(draw(gen, t.shape, -0.5, 0.5))
            elif name.endswith("running_var"):
                t.copy_(draw(gen, t.shape, 0.5, 1.5))
            else:
                t.copy_(draw(gen, t.shape))


def ball_pixel_counts(out, radius):
    """(inside, outside) pixel counts of a hardball's output: outside pixels land on the sphere."""
    norms = out.detach().pow(2).sum(dim=1).sqrt().reshape(-1)
    on_sphere = (norms - radius).abs() <= 1e-12 * radius
    return int((~on_sphere).sum()), int(on_sphere.sum())


def block_case(case_id, input_shape, **config):
    gen = generator_for(case_id)
    block = torch_pde.QuasiLinearBlock(**config).double()
    randomize_state(block, gen)
    state = {name: packed(t) for name, t in torch_pde.symgrad_state(block).items()}

    block.train()
    x = draw(gen, input_shape).requires_grad_()
    out = block(x)
    weighting = draw(gen, out.shape)
    (out * weighting).sum().backward()
    grads = {"input": packed(x.grad)}
    grads.update({name: packed(p.grad) for name, p in block.named_parameters()})
    running_stats = {name: packed(t) for name, t in torch_pde.symgrad_state(block).items() if "running_" in name}

    block.eval()
    with torch.no_grad():
        eval_output = block(x)

    case = {"id": case_id, "config": config, "width": block.width, "input": packed(x), "state": state,
            "output": packed(out), "weighting": packed(weighting), "grads": grads,
            "running_stats": running_stats, "eval_output": packed(eval_output)}
    if block.ball is not None:
        inside, outside = ball_pixel_counts(out, block.ball.radius)
        assert inside > 0 and outside > 0, f"{case_id}: hardball pixels inside {inside}, outside {outside}"
        case["hardball_radius"] = block.ball.radius
        case["hardball_pixels"] = {"inside": inside, "outside": outside}
    return case


def block_cases():
    # (1) identity skip, w = 4 * 4 = 16 by the default width rule, zero padding.
    yield block_case("identity_skip_zeros", (2, 4, 6, 6), in_channels=4, out_channels=4, stride=1,
                     width_factor=0, padding_mode="zeros")
    # (2) stride 2 and 4 -> 8 channels: projection skip and a hardball of radius sqrt(8).
    # The BN outputs have per-pixel norms around the radius (whatever the input scale, which
    # BN removes): the script checks that some pixels end inside the ball and some outside.
    yield block_case("projection_stride2_hardball", (2, 4, 7, 7), in_channels=4, out_channels=8, stride=2,
                     width_factor=0, padding_mode="zeros", hardball=True)
    # (3) variable coefficients on a stride-1 grid, reflect padding.
    yield block_case("variable_coefficients_reflect", (2, 4, 6, 6), in_channels=4, out_channels=4, stride=1,
                     width_factor=0, padding_mode="reflect", variable_coefficients=True)
    # (3b) variable coefficients on the stride-2 output grid (7x7 -> 4x4), replicate padding,
    # width factor 2, a projection without hardball.
    yield block_case("variable_coefficients_stride2_replicate", (2, 4, 7, 7), in_channels=4, out_channels=6,
                     stride=2, width_factor=2, padding_mode="replicate", variable_coefficients=True,
                     hardball=False)
    # (4) periodic boundary.
    yield block_case("circular", (2, 4, 6, 6), in_channels=4, out_channels=4, stride=1, width_factor=0,
                     padding_mode="circular")
    # A given hardball radius on a projection of the same width (stride 1, 4 -> 5).
    yield block_case("projection_hardball_radius_2", (2, 4, 5, 5), in_channels=4, out_channels=5, stride=1,
                     width_factor=1, padding_mode="zeros", hardball=True, hardball_radius=2.0)


def ball_case(case_id, radius_hardball, radius_softball):
    gen = generator_for(case_id)
    x = draw(gen, (3, 5, 2, 2), -4.0, 4.0)
    # Pixel (0, :, 0, 0) = 0 and pixel (1, :, 1, 0) = (3, 4, 0, 0, 0): ||v||^2 = 25 = r^2
    # exactly, the hardball's boundary, where the rule says the derivative is the identity.
    x[0, :, 0, 0] = 0.0
    x[1, :, 1, 0] = torch.tensor([3.0, 4.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert radius_hardball == 5.0
    x.requires_grad_()
    weighting = draw(gen, x.shape)
    case = {"id": case_id, "input": packed(x), "weighting": packed(weighting)}
    for name, fn, radius in (("hardball", torch_pde.hardball, radius_hardball),
                             ("softball", torch_pde.softball, radius_softball)):
        x.grad = None
        out = fn(x, radius)
        (out * weighting).sum().backward()
        case[name] = {"radius": radius, "output": packed(out), "input_grad": packed(x.grad)}
    # Both branches must be exercised; the boundary pixel lies on the sphere too, so
    # ball_pixel_counts counts it with the outside ones.
    inside, outside = ball_pixel_counts(torch_pde.hardball(x, radius_hardball), radius_hardball)
    assert inside > 1 and outside > 2, f"{case_id}: inside {inside}, outside {outside}"
    return case


def main():
    torch.set_num_threads(1)  # one summation order, so the file is reproducible
    blocks = list(block_cases())
    ids = [case["id"] for case in blocks]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    balls = [ball_case("balls", 5.0, 2.5)]
    header = {"source": "tools/make_pde_reference.py (models: tools/torch_pde.py)",
              "torch_version": torch.__version__, "dtype": "float64", "loss": "sum(output * weighting)",
              "bn_momentum": 0.1, "bn_eps": 1e-5}
    lines = ["{"] + [f"{json.dumps(k)}: {json.dumps(v)}," for k, v in header.items()]
    for key, cases in (("blocks", blocks), ("balls", balls)):
        lines.append(f'"{key}": [')
        lines += [json.dumps(case, separators=(",", ":")) + ("," if i + 1 < len(cases) else "")
                  for i, case in enumerate(cases)]
        lines.append("]," if key == "blocks" else "]")
    lines.append("}")
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(blocks)} block cases and {len(balls)} ball case to {OUTPUT} "
          f"({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
