"""The vocoder (``decoder`` in BiCodec): a DAC-style decoder, 320x upsampling to 16 kHz.

Like the backbones, every temporal convolution accepts an optional padding mask
(B, 1, T) at its own resolution and zeroes the padding first, so a padded batch
reproduces each clip's unpadded output.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .config import WaveGeneratorConfig
from .vocos import apply_mask
from .weight_norm import WNConv1d, WNConvTranspose1d


class Snake1d(nn.Module):
    """x + sin^2(alpha x) / alpha, one alpha per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int):
        super().__init__()
        pad = (6 * dilation) // 2
        self.block = nn.Sequential(
            Snake1d(dim),
            WNConv1d(dim, dim, kernel_size=7, dilation=dilation, padding=pad),
            Snake1d(dim),
            WNConv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        snake1, conv7, snake2, conv1 = self.block
        y = conv1(snake2(conv7(apply_mask(snake1(x), mask))))
        return x + y


class DecoderBlock(nn.Module):
    """Snake -> transposed conv (x stride) -> residual units with dilation 1, 3, 9."""

    def __init__(self, input_dim: int, output_dim: int, kernel_size: int, stride: int):
        super().__init__()
        self.stride = stride
        self.block = nn.Sequential(
            Snake1d(input_dim),
            WNConvTranspose1d(input_dim, output_dim, kernel_size=kernel_size, stride=stride,
                              padding=(kernel_size - stride) // 2),
            ResidualUnit(output_dim, dilation=1),
            ResidualUnit(output_dim, dilation=3),
            ResidualUnit(output_dim, dilation=9),
        )

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None):
        snake, up, *units = self.block
        x = up(apply_mask(snake(x), mask))
        if mask is not None:
            mask = mask.repeat_interleave(self.stride, dim=-1)
        for unit in units:
            x = unit(x, mask)
        return x, mask


class WaveGenerator(nn.Module):
    """(B, input_channel, T) -> (B, 1, T * prod(rates)) in [-1, 1]."""

    def __init__(self, c: WaveGeneratorConfig, d_out: int = 1):
        super().__init__()
        if len(c.rates) != len(c.kernel_sizes):
            raise ValueError("decoder rates and kernel_sizes differ in length")
        layers: list[nn.Module] = [WNConv1d(c.input_channel, c.channels, kernel_size=7, padding=3)]
        out_dim = c.channels
        for i, (k, s) in enumerate(zip(c.kernel_sizes, c.rates)):
            in_dim, out_dim = c.channels // 2 ** i, c.channels // 2 ** (i + 1)
            layers.append(DecoderBlock(in_dim, out_dim, k, s))
        layers += [Snake1d(out_dim), WNConv1d(out_dim, d_out, kernel_size=7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.hop_length = math.prod(c.rates)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        first, *blocks, snake, last, tanh = self.model
        x = first(apply_mask(x, mask))
        for block in blocks:
            x, mask = block(x, mask)
        return tanh(last(apply_mask(snake(x), mask)))
