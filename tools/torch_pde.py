"""PyTorch 1.13 models with the semantics and parameter names of symgrad's pde module.

The quasi-linear hyperbolic block of Liu, Shao & Bai (2023, arXiv 2308.01621), the ResNet
BasicBlock baseline and PDEResNet (configs B and G), written here from the pinned
description (pde/quasi_linear_block.hpp, pde/pde_resnet.hpp) so that PyTorch can serve as an
independent reference: tools/make_pde_reference.py writes test fixtures with it, and the
benchmark and the training example's comparison build their PyTorch models from it.

Parameter and buffer names are symgrad's ("stage2.0.conv1.conv.weight",
"stage2.0.conv1.bn.running_mean", "fc.weight"). PyTorch's BatchNorm also keeps
num_batches_tracked, which symgrad has not: symgrad_state() leaves it out, and
load_symgrad_state() loads a state by those names.

    import torch_pde
    model = torch_pde.build_pde_resnet("B")                 # or block="basic", "G"
    block = torch_pde.QuasiLinearBlock(16, 32, stride=2)    # one block

Run with /usr/bin/python3 (the interpreter that has PyTorch 1.13).
"""
import dataclasses
import math
from collections import OrderedDict
from typing import List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


# ---- ball activations -------------------------------------------------------------------

def hardball(x, radius):
    """v -> v * min(1, r / ||v||) per pixel, the norm over axis 1.

    Inside the ball and on its boundary (||v|| <= r) the derivative is the identity, as in
    symgrad: the outside branch sees r^2 there instead of ||v||^2, so its factor is exactly 1
    and carries no gradient (and never divides by zero at v = 0).
    """
    norm2 = (x * x).sum(dim=1, keepdim=True)
    r2 = radius * radius
    inside = norm2 <= r2
    outside_norm2 = torch.where(inside, torch.full_like(norm2, r2), norm2)
    return x * (radius / outside_norm2.sqrt())


def softball(x, radius):
    """v -> v / sqrt(1 + ||v||^2 / r^2) per pixel, the norm over axis 1."""
    norm2 = (x * x).sum(dim=1, keepdim=True)
    return x / (1.0 + norm2 / (radius * radius)).sqrt()


class _Ball(nn.Module):
    def __init__(self, radius):
        super().__init__()
        if not (radius > 0 and math.isfinite(radius)):
            raise ValueError(f"{type(self).__name__}: radius must be positive and finite, got {radius}")
        self.radius = float(radius)

    def extra_repr(self):
        return f"r = {self.radius:.4g}"


class Hardball(_Ball):
    def forward(self, x):
        return hardball(x, self.radius)


class Softball(_Ball):
    def forward(self, x):
        return softball(x, self.radius)


# ---- ConvBN -----------------------------------------------------------------------------

class ConvBN(nn.Module):
    """conv (no bias) then BatchNorm2d; folded: one conv with a bias and no BN.

    Names: conv.weight, bn.{weight, bias, running_mean, running_var}; folded conv.weight,
    conv.bias.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, groups=1,
                 padding_mode="zeros", folded=False, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              groups=groups, bias=folded, padding_mode=padding_mode)
        self.bn = None if folded else nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum)

    def forward(self, x):
        y = self.conv(x)
        return y if self.bn is None else self.bn(y)

    @property
    def folded(self):
        return self.bn is None

    @torch.no_grad()
    def fold_from(self, source):
        """This (folded) unit computes what `source` (unfolded) computes in eval mode:
        with s = gamma / sqrt(running_var + eps), weight' = s[o] * weight[o], bias' =
        beta - s * running_mean (in float64)."""
        if not self.folded or source.folded:
            raise ValueError("ConvBN.fold_from: needs a folded target and an unfolded source")
        bn = source.bn
        scale = bn.weight.double() / (bn.running_var.double() + bn.eps).sqrt()
        weight = source.conv.weight.double() * scale.reshape(-1, 1, 1, 1)
        bias = bn.bias.double() - scale * bn.running_mean.double()
        self.conv.weight.copy_(weight)
        self.conv.bias.copy_(bias)


def kaiming_normal_fan_out_(conv):
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")


# ---- the quasi-linear block -------------------------------------------------------------

def default_width_factor(in_channels):
    """The paper's width rule: k = 4 if in_channels <= 128 else 2."""
    return 4 if in_channels <= 128 else 2


def coordinate_field(height, width, dtype=torch.float32, device=None):
    """[1, 5, H, W]: X, Y, X^2, XY, Y^2 with X[i, j] = 2j/(W-1) - 1, Y[i, j] = 2i/(H-1) - 1
    (0 along a size-1 axis)."""
    def axis(n):
        if n == 1:
            return torch.zeros(1, dtype=torch.float64, device=device)
        return 2.0 * torch.arange(n, dtype=torch.float64, device=device) / (n - 1) - 1.0

    x = axis(width).reshape(1, width).expand(height, width)
    y = axis(height).reshape(height, 1).expand(height, width)
    return torch.stack([x, y, x * x, x * y, y * y]).unsqueeze(0).to(dtype)


class QuasiLinearBlock(nn.Module):
    """One forward-Euler step of u_t = sum_i A_i(u) d_i u (pde/quasi_linear_block.hpp):

        a = BN(conv1x1(x)), in -> 2w;  p = a[:, :w] * a[:, w:]
        d = BN(depthwise3x3(p)), w -> 2w, groups w, stride s, padding 1 in padding_mode
        d = d * coefficients(coordinate_field)      (variable coefficients only)
        out = x0 + BN(conv1x1(d)), 2w -> out;  x0 = x or BN(conv1x1 stride s (x))
        out = hardball(out, r)                      (projection blocks with hardball only)
    """

    def __init__(self, in_channels, out_channels=0, stride=1, width_factor=0, padding_mode="zeros",
                 variable_coefficients=False, hardball=True, hardball_radius=0.0, zero_init_last_bn=True,
                 folded=False, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"QuasiLinearBlock: padding_mode {padding_mode!r} is not one of {PADDING_MODES}")
        out = out_channels or in_channels
        k = width_factor or default_width_factor(in_channels)
        w = k * in_channels
        self.in_channels, self.out_channels, self.width, self.stride = in_channels, out, w, stride
        bn = dict(folded=folded, bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.conv1 = ConvBN(in_channels, 2 * w, 1, **bn)
        self.depthwise = ConvBN(w, 2 * w, 3, stride=stride, padding=1, groups=w, padding_mode=padding_mode, **bn)
        self.coefficients = None
        if variable_coefficients:
            self.coefficients = nn.Conv2d(5, 2 * w, 1, bias=True)
        self.conv3 = ConvBN(2 * w, out, 1, **bn)
        projection = stride > 1 or out != in_channels
        self.skip = ConvBN(in_channels, out, 1, stride=stride, **bn) if projection else None
        self.ball = Hardball(hardball_radius or math.sqrt(out)) if projection and hardball else None

        for unit in (self.conv1, self.depthwise, self.conv3, self.skip):
            if unit is not None:
                kaiming_normal_fan_out_(unit.conv)
        if self.coefficients is not None:  # a fresh block computes the constant-coefficient one
            nn.init.zeros_(self.coefficients.weight)
            nn.init.ones_(self.coefficients.bias)
        if zero_init_last_bn and not folded:  # the block starts as the identity (or the skip)
            nn.init.zeros_(self.conv3.bn.weight)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"QuasiLinearBlock: input {list(x.shape)} has wrong shape, "
                             f"expected [N, {self.in_channels}, H, W]")
        w = self.width
        a = self.conv1(x)
        p = a[:, :w] * a[:, w:]  # the quadratic coupling: the "A(u) d u" term
        d = self.depthwise(p)
        if self.coefficients is not None:
            field = coordinate_field(d.shape[2], d.shape[3], d.dtype, d.device)
            d = d * self.coefficients(field)
        y = self.conv3(d)
        x0 = x if self.skip is None else self.skip(x)
        out = x0 + y
        return out if self.ball is None else self.ball(out)


class BasicBlock(nn.Module):
    """out = relu(x0 + BN(conv3x3(relu(BN(conv3x3 stride s (x)))))) (He et al. 2016)."""

    def __init__(self, in_channels, out_channels=0, stride=1, padding_mode="zeros", zero_init_last_bn=True,
                 folded=False, bn_eps=1e-5, bn_momentum=0.1):
        super().__init__()
        out = out_channels or in_channels
        self.in_channels, self.out_channels, self.stride = in_channels, out, stride
        bn = dict(folded=folded, bn_eps=bn_eps, bn_momentum=bn_momentum)
        self.conv1 = ConvBN(in_channels, out, 3, stride=stride, padding=1, padding_mode=padding_mode, **bn)
        self.conv2 = ConvBN(out, out, 3, padding=1, padding_mode=padding_mode, **bn)
        projection = stride > 1 or out != in_channels
        self.skip = ConvBN(in_channels, out, 1, stride=stride, **bn) if projection else None
        for unit in (self.conv1, self.conv2, self.skip):
            if unit is not None:
                kaiming_normal_fan_out_(unit.conv)
        if zero_init_last_bn and not folded:
            nn.init.zeros_(self.conv2.bn.weight)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        x0 = x if self.skip is None else self.skip(x)
        return F.relu(x0 + y)


# ---- PDEResNet --------------------------------------------------------------------------

@dataclasses.dataclass
class PDEResNetConfig:
    """Mirrors symgrad::pde::PDEResNetConfig (pde/pde_resnet.hpp)."""
    in_channels: int = 1
    num_classes: int = 10
    stem_channels: int = 16
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_relu: bool = True
    stem_max_pool: bool = False
    stages: List[Tuple[int, int, int]] = dataclasses.field(default_factory=list)  # (channels, blocks, stride)
    block: str = "quasi_linear"  # or "basic"
    width_factor: int = 0
    stage_entry_hardball: bool = True
    variable_coefficients: bool = False
    head_hardball: bool = True
    head_radius: float = 0.0
    padding_mode: str = "zeros"
    zero_init_last_bn: bool = True
    folded: bool = False
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1


def config_B():
    """stem 3x3 1 -> 16 + BN + ReLU, stages {16, 2, 1}, {32, 2, 2}, {64, 2, 2}, head hardball r = 8."""
    return PDEResNetConfig(stages=[(16, 2, 1), (32, 2, 2), (64, 2, 2)])


def config_G():
    """Config B with a stride-2 stem."""
    return dataclasses.replace(config_B(), stem_stride=2)


def config_imagenet(num_classes=100):
    return PDEResNetConfig(in_channels=3, num_classes=num_classes, stem_channels=64, stem_kernel=7, stem_stride=2,
                           stem_max_pool=True, stages=[(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)])


def baseline_of(config):
    """The same layout with BasicBlocks; the quasi-linear options (hardballs included) are
    cleared, as symgrad's baseline_of does."""
    return dataclasses.replace(config, block="basic", width_factor=0, stage_entry_hardball=False,
                               variable_coefficients=False, head_hardball=False, head_radius=0.0)


def full_gl_variant_of(config):
    """No stem ReLU and no hardball: every residual stream carries the full GL(n) symmetry."""
    return dataclasses.replace(config, stem_relu=False, stage_entry_hardball=False, head_hardball=False)


PRESETS = {"B": config_B, "G": config_G, "imagenet": config_imagenet}


def preset(name):
    if name not in PRESETS:
        raise ValueError(f"preset: unknown name {name!r}, expected one of {sorted(PRESETS)}")
    return PRESETS[name]()


class PDEResNet(nn.Module):
    """stem -> [relu] -> [maxpool 3/2/1] -> stage1..stageN -> [head hardball] -> global
    average pool -> fc. Children named as symgrad's: stem, stage1, ..., head_ball, fc."""

    def __init__(self, config):
        super().__init__()
        if config.block not in ("quasi_linear", "basic"):
            raise ValueError(f"PDEResNet: block {config.block!r} is not 'quasi_linear' or 'basic'")
        self.config = config
        bn = dict(folded=config.folded, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum)
        self.stem = ConvBN(config.in_channels, config.stem_channels, config.stem_kernel, stride=config.stem_stride,
                           padding=config.stem_kernel // 2, padding_mode=config.padding_mode, **bn)
        kaiming_normal_fan_out_(self.stem.conv)
        channels = config.stem_channels
        self.stage_names = []
        for index, (stage_channels, blocks, stride) in enumerate(config.stages, start=1):
            stage = nn.Sequential(*[self._block(channels if b == 0 else stage_channels, stage_channels,
                                                stride if b == 0 else 1, bn) for b in range(blocks)])
            name = f"stage{index}"
            self.add_module(name, stage)
            self.stage_names.append(name)
            channels = stage_channels
        self.head_ball = None
        if config.head_hardball:
            self.head_ball = Hardball(config.head_radius or math.sqrt(channels))
        self.fc = nn.Linear(channels, config.num_classes)

    def _block(self, in_channels, out_channels, stride, bn):
        c = self.config
        if c.block == "basic":
            return BasicBlock(in_channels, out_channels, stride, padding_mode=c.padding_mode,
                              zero_init_last_bn=c.zero_init_last_bn, **bn)
        return QuasiLinearBlock(in_channels, out_channels, stride, width_factor=c.width_factor,
                                padding_mode=c.padding_mode, variable_coefficients=c.variable_coefficients,
                                hardball=c.stage_entry_hardball, zero_init_last_bn=c.zero_init_last_bn, **bn)

    def forward(self, x):
        x = self.stem(x)
        if self.config.stem_relu:
            x = F.relu(x)
        if self.config.stem_max_pool:
            x = F.max_pool2d(x, 3, stride=2, padding=1)
        for name in self.stage_names:
            x = getattr(self, name)(x)
        if self.head_ball is not None:
            x = self.head_ball(x)
        return self.fc(x.mean(dim=(2, 3)))


def build_pde_resnet(preset_name="B", block="quasi_linear", **overrides):
    """PDEResNet from a preset ("B", "G", "imagenet"), a block kind ("quasi_linear", or
    "basic" for baseline_of(preset)) and any PDEResNetConfig field as a keyword override."""
    if block not in ("quasi_linear", "basic"):
        raise ValueError(f"build_pde_resnet: block {block!r} is not 'quasi_linear' or 'basic'")
    config = preset(preset_name)
    if block == "basic":
        config = baseline_of(config)
    return PDEResNet(dataclasses.replace(config, **overrides))


# ---- state in symgrad's names -----------------------------------------------------------

def symgrad_state(module):
    """Parameters and buffers by symgrad's names (num_batches_tracked left out), detached."""
    return OrderedDict((name, t.detach()) for name, t in module.state_dict().items()
                       if not name.endswith("num_batches_tracked"))


@torch.no_grad()
def load_symgrad_state(module, state):
    """Copies every tensor of `state` (symgrad names) into `module`; the names must match
    exactly (num_batches_tracked aside)."""
    own = symgrad_state(module)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise KeyError(f"load_symgrad_state: missing {missing}, unexpected {unexpected}")
    for name, target in own.items():
        source = torch.as_tensor(state[name])
        if tuple(source.shape) != tuple(target.shape):
            raise ValueError(f"load_symgrad_state: {name} has shape {list(source.shape)}, "
                             f"expected {list(target.shape)}")
        target.copy_(source)


def num_parameters(module):
    return sum(p.numel() for p in module.parameters())
