"""The global (speaker) tokenizer: mel -> ECAPA frames -> Perceiver latents -> residual FSQ."""

from __future__ import annotations

import torch
from torch import nn

from .config import SpeakerEncoderConfig
from .ecapa import ECAPATDNN
from .perceiver import PerceiverResampler
from .quantizers import ResidualFSQ


class SpeakerEncoder(nn.Module):
    def __init__(self, c: SpeakerEncoderConfig, ecapa_channels: int = 512):
        super().__init__()
        self.speaker_encoder = ECAPATDNN(feat_dim=c.input_dim, embed_dim=c.out_dim, channels=ecapa_channels)
        self.perceiver_sampler = PerceiverResampler(dim=c.latent_dim, dim_context=ecapa_channels * 3,
                                                    num_latents=c.token_num)
        self.quantizer = ResidualFSQ(dim=c.latent_dim, levels=c.fsq_levels, num_quantizers=c.fsq_num_quantizers)
        self.project = nn.Linear(c.latent_dim * c.token_num, c.out_dim)
        self.token_num = c.token_num

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
