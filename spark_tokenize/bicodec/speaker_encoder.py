"""The global (speaker) tokenizer: mel -> ECAPA frames -> Perceiver latents -> residual FSQ."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .ecapa import ECAPATDNN
from .perceiver import PerceiverResampler
from .quantizers import ResidualFSQ


class SpeakerEncoder(nn.Module):
    def __init__(self, input_dim: int, out_dim: int, latent_dim: int, token_num: int,
                 fsq_levels: Sequence[int], fsq_num_quantizers: int, ecapa_channels: int = 512):
        super().__init__()
        self.speaker_encoder = ECAPATDNN(feat_dim=input_dim, embed_dim=out_dim, channels=ecapa_channels)
        self.perceiver_sampler = PerceiverResampler(dim=latent_dim, dim_context=ecapa_channels * 3,
                                                    num_latents=token_num)
        self.quantizer = ResidualFSQ(dim=latent_dim, levels=fsq_levels, num_quantizers=fsq_num_quantizers)
        self.project = nn.Linear(latent_dim * token_num, out_dim)
        self.token_num = token_num

    def tokenize(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) -> global tokens (B, num_quantizers, token_num) int32."""
        features = self.speaker_encoder.frame_features(mels)
        x = self.perceiver_sampler(features.transpose(1, 2)).transpose(1, 2)
        _, indices = self.quantizer(x)
        return indices

    def detokenize(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, num_quantizers, token_num) -> d-vector (B, out_dim)."""
        zq = self.quantizer.output_from_indices(indices.transpose(1, 2)).transpose(1, 2)
        # (B, latent_dim, token_num) flattened channel-major, as the projection was trained.
        return self.project(zq.reshape(zq.shape[0], -1))

    def x_vector(self, mels: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) -> ECAPA x-vector (B, out_dim), for speaker similarity."""
        return self.speaker_encoder.x_vector(self.speaker_encoder.frame_features(mels))
