"""The semantic encoder and the prenet/postnet decoder of BiCodec (no time resampling)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .config import DecoderConfig, EncoderConfig
from .vocos import SampledBackbone, VocosBackbone


class Encoder(nn.Module):
    """wav2vec2 features (B, C_in, T) -> latent (B, C_out, T)."""

    def __init__(self, c: EncoderConfig):
        super().__init__()
        self.encoder = VocosBackbone(c.input_channels, c.vocos_dim, c.vocos_intermediate_dim, c.vocos_num_layers)
        self.downsample = nn.Sequential(
            *[SampledBackbone(c.vocos_dim, c.vocos_intermediate_dim, r, up=False) for r in c.sample_ratios])
        self.project = nn.Linear(c.vocos_dim, c.out_channels)

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.encoder(x, mask=mask)
        for stage in self.downsample:
            x = stage(x, mask=mask)
        return self.project(x).transpose(1, 2)


class Decoder(nn.Module):
    """Prenet (conditioned on the d-vector through AdaLayerNorm) and postnet: (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, c: DecoderConfig):
        super().__init__()
        self.linear_pre = nn.Linear(c.input_channels, c.vocos_dim)
        self.downsample = nn.Sequential(
            *[SampledBackbone(c.vocos_dim, c.vocos_intermediate_dim, r, up=True) for r in c.sample_ratios])
        self.vocos_backbone = VocosBackbone(c.vocos_dim, c.vocos_dim, c.vocos_intermediate_dim,
                                            c.vocos_num_layers, condition_dim=c.condition_dim)
        self.linear = nn.Linear(c.vocos_dim, c.out_channels)
        self.use_tanh_at_final = c.use_tanh_at_final

    def forward(self, x: torch.Tensor, condition: Optional[torch.Tensor] = None,
                mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.linear_pre(x.transpose(1, 2))
        for stage in self.downsample:
            x = stage(x, mask=mask)
        x = self.vocos_backbone(x.transpose(1, 2), condition=condition, mask=mask)
        x = self.linear(x).transpose(1, 2)
        return torch.tanh(x) if self.use_tanh_at_final else x
