"""ConvNeXt backbone (Vocos style) and the ratio-1 sampling block of BiCodec.

Every module here takes an optional ``mask`` (B, 1, T) of 1 for real frames and 0 for
padding. Padding is zeroed right before every temporal convolution, which makes the
convolution see exactly the zero padding it would see on the unpadded clip: a padded
batch then gives each clip the same result as running it alone. All other operations
are per frame.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.nn import functional as F


def apply_mask(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Zero padded frames of a channels-first (B, C, T) tensor."""
    return x if mask is None else x * mask


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine, then per-utterance scale and shift from a condition vector."""

    def __init__(self, condition_dim: int, dim: int, eps: float = 1e-6):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.scale = nn.Linear(condition_dim, dim)
        self.shift = nn.Linear(condition_dim, dim)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        scale = self.scale(condition)
        shift = self.shift(condition)
        x = F.layer_norm(x, (self.dim,), eps=self.eps)
        return x * scale.unsqueeze(1) + shift.unsqueeze(1)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv k7 -> (Ada)LayerNorm -> Linear -> GELU -> Linear -> layer scale -> residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float,
                 condition_dim: Optional[int] = None):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.adanorm = condition_dim is not None
        self.norm = AdaLayerNorm(condition_dim, dim) if self.adanorm else nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        residual = x
        x = self.dwconv(apply_mask(x, mask)).transpose(1, 2)
        x = self.norm(x, condition) if self.adanorm else self.norm(x)
        x = self.pwconv2(self.act(self.pwconv1(x)))
        x = (self.gamma * x).transpose(1, 2)
        return residual + x


class VocosBackbone(nn.Module):
    """(B, C_in, T) -> (B, T, dim), channels-last like the reference.

    Conv k7 embed -> (Ada)LayerNorm -> N ConvNeXt blocks -> final LayerNorm.
    """

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int,
                 condition_dim: Optional[int] = None):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, kernel_size=7, padding=3)
        self.adanorm = condition_dim is not None
        self.norm = AdaLayerNorm(condition_dim, dim) if self.adanorm else nn.LayerNorm(dim, eps=1e-6)
        scale = 1.0 / num_layers
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(dim, intermediate_dim, scale, condition_dim) for _ in range(num_layers)])
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.embed(apply_mask(x, mask)).transpose(1, 2)
        x = self.norm(x, condition) if self.adanorm else self.norm(x)
        x = x.transpose(1, 2)
        for block in self.convnext:
            x = block(x, condition, mask)
        return self.final_layer_norm(x.transpose(1, 2))


class SamplingBlock(nn.Module):
    """BiCodec's up/down-sampling block at ratio 1, the only ratio the official config uses.

    With ratio 1 its identity path and both skip paths degenerate to the input, so it
    returns 3 * x (channels-last in, channels-first out) and has no parameters. Other
    ratios are refused rather than guessed.
    """

    def __init__(self, dim: int, groups: int = 1, upsample_scale: int = 1, downsample_scale: int = 1):
        super().__init__()
        if upsample_scale != 1 or downsample_scale != 1:
            raise ValueError(
                f"sample_ratios other than 1 are not supported (got up {upsample_scale}, down {downsample_scale})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)
        return x + x + x


class SampledBackbone(nn.Sequential):
    """[SamplingBlock, VocosBackbone(2 blocks)]: one stage of encoder.downsample / Decoder.downsample.

    A Sequential so the state-dict names are ``<stage>.1.<backbone keys>``.
    """

    def __init__(self, dim: int, intermediate_dim: int, ratio: int, up: bool):
        kw = {"upsample_scale": ratio} if up else {"downsample_scale": ratio}
        super().__init__(SamplingBlock(dim, groups=dim, **kw),
                         VocosBackbone(dim, dim, intermediate_dim, num_layers=2))

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self[1](self[0](x), mask=mask)
