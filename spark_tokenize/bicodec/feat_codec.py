"""The semantic encoder and the prenet/postnet decoder of BiCodec (no time resampling)."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from .vocos import SampledBackbone, VocosBackbone


class Encoder(nn.Module):
    """wav2vec2 features (B, C_in, T) -> latent (B, C_out, T)."""

    def __init__(self, input_channels: int, vocos_dim: int, vocos_intermediate_dim: int,
                 vocos_num_layers: int, out_channels: int, sample_ratios: Sequence[int] = (1, 1)):
        super().__init__()
        self.encoder = VocosBackbone(input_channels, vocos_dim, vocos_intermediate_dim, vocos_num_layers)
        self.downsample = nn.Sequential(
            *[SampledBackbone(vocos_dim, vocos_intermediate_dim, r, up=False) for r in sample_ratios])
        self.project = nn.Linear(vocos_dim, out_channels)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.encoder(x, mask=mask)
        for stage in self.downsample:
            x = stage(x, mask=mask)
        return self.project(x).transpose(1, 2)


class Decoder(nn.Module):
    """Prenet (conditioned on the d-vector through AdaLayerNorm) and postnet: (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, input_channels: int, vocos_dim: int, vocos_intermediate_dim: int,
                 vocos_num_layers: int, out_channels: int, condition_dim: Optional[int] = None,
                 sample_ratios: Sequence[int] = (1, 1), use_tanh_at_final: bool = False):
        super().__init__()
        self.linear_pre = nn.Linear(input_channels, vocos_dim)
        self.downsample = nn.Sequential(
            *[SampledBackbone(vocos_dim, vocos_intermediate_dim, r, up=True) for r in sample_ratios])
        self.vocos_backbone = VocosBackbone(vocos_dim, vocos_dim, vocos_intermediate_dim,
                                            vocos_num_layers, condition_dim=condition_dim)
        self.linear = nn.Linear(vocos_dim, out_channels)
        self.use_tanh_at_final = use_tanh_at_final

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.linear_pre(x.transpose(1, 2))
        for stage in self.downsample:
            x = stage(x, mask=mask)
        x = self.vocos_backbone(x.transpose(1, 2), condition=condition, mask=mask)
        x = self.linear(x).transpose(1, 2)
        return torch.tanh(x) if self.use_tanh_at_final else x
