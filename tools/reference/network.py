"""PyTorch reference of the DCASE2024/2025 baseline network (simplified CP-Mobile), written from the facts.

For the equivalence fixtures only (needs the optional ``reference`` extra: torch); never imported by
the project or its tests. Written from the published description (issue 23, "Facts to build on"),
not from the CPJKU code (which carries no licence):

- stem: Conv2d(1, 8, 3, stride 2, padding 1, no bias) + BN + ReLU, Conv2d(8, 32, ...) + BN + ReLU;
- six blocks: 1x1 expand + BN + ReLU, 3x3 depthwise (stride, padding 1) + BN + ReLU, 1x1 project + BN;
  a shortcut where in and out widths match (identity, or AvgPool2d(3, stride, padding 1) counting the
  padding when strided); ReLU after the add (after the project BN where there is no shortcut);
- head: Conv2d(104, classes, 1, no bias) + BN, adaptive average pool to 1 x 1: the logits.

BatchNorm2d(eps=1e-5, momentum=0.1). Input ``(batch, 1, n_mels, n_frames)`` (NCHW), output
``(batch, classes)`` logits. Module names equal the Keras layer names of ``utils.cpmobile``
(``stem_conv1``, ``block3_depthwise_bn``, ``head_conv``...), so a state dict maps name for name.
"""

from __future__ import annotations

import torch
from torch import nn

# (expanded width, output width, stride (freq, time)) of blocks 1..6, as utils.cpmobile.BLOCKS
BLOCKS = ((64, 32, (1, 1)), (64, 32, (1, 1)), (64, 32, (1, 2)), (64, 56, (2, 1)), (120, 56, (1, 1)), (120, 104, (1, 1)))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)


class Block(nn.Module):
    """One inverted bottleneck; attribute names are the Keras layer names without the ``blockN_`` prefix."""

    def __init__(self, in_width: int, expanded: int, out_width: int, stride: tuple):
        super().__init__()
        self.expand = nn.Conv2d(in_width, expanded, 1, bias=False)
        self.expand_bn = _bn(expanded)
        self.depthwise = nn.Conv2d(expanded, expanded, 3, stride=stride, padding=1, groups=expanded, bias=False)
        self.depthwise_bn = _bn(expanded)
        self.project = nn.Conv2d(expanded, out_width, 1, bias=False)
        self.project_bn = _bn(out_width)
        self.shortcut = None
        if in_width == out_width:
            self.shortcut = nn.Identity() if tuple(stride) == (1, 1) else nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.expand_bn(self.expand(x)))
        y = torch.relu(self.depthwise_bn(self.depthwise(y)))
        y = self.project_bn(self.project(y))
        if self.shortcut is not None:
            y = y + self.shortcut(x)
        return torch.relu(y)


class CPMobile(nn.Module):
    """The whole network: logits ``(batch, classes)`` of ``(batch, 1, n_mels, n_frames)`` log-mels."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem_conv1 = nn.Conv2d(1, 8, 3, stride=2, padding=1, bias=False)
        self.stem_conv1_bn = _bn(8)
        self.stem_conv2 = nn.Conv2d(8, 32, 3, stride=2, padding=1, bias=False)
        self.stem_conv2_bn = _bn(32)
        width, blocks = 32, []
        for expanded, out, stride in BLOCKS:
            blocks.append(Block(width, expanded, out, stride))
            width = out
        self.blocks = nn.ModuleList(blocks)
        self.head_conv = nn.Conv2d(width, classes, 1, bias=False)
        self.head_conv_bn = _bn(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_conv1_bn(self.stem_conv1(x)))
        x = torch.relu(self.stem_conv2_bn(self.stem_conv2(x)))
        for block in self.blocks:
            x = block(x)
        x = self.head_conv_bn(self.head_conv(x))
        return nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)


def keras_name(torch_name: str) -> tuple[str, str]:
    """(Keras layer name, parameter) of a state-dict entry: ``blocks.2.depthwise_bn.running_var`` ->
    (``block3_depthwise_bn``, ``running_var``)."""
    parts = torch_name.split(".")
    if parts[0] == "blocks":
        return f"block{int(parts[1]) + 1}_{parts[2]}", parts[3]
    return parts[0], parts[1]


def randomise(model: CPMobile, generator: torch.Generator) -> None:
    """Seeded random weights everywhere, BN running statistics included (so that no term is trivial).

    Convolutions N(0, 2 / fan_in); BN scale U(0.5, 1.5), shift N(0, 0.2), running mean N(0, 0.2), running
    variance U(0.5, 1.5); the head's BN scale U(0.05, 0.25), so that the logits are a few units as a
    trained network's (the comparison's tolerance is absolute).
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator, dtype=torch.float64) * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator, dtype=torch.float64))
                if module is model.head_conv_bn:
                    module.weight.mul_(0.2).sub_(0.05)
                module.bias.copy_(0.2 * torch.randn(n, generator=generator, dtype=torch.float64))
                module.running_mean.copy_(0.2 * torch.randn(n, generator=generator, dtype=torch.float64))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator, dtype=torch.float64))
