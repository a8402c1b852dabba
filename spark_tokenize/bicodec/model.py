"""BiCodec: semantic tokens from wav2vec2 features, global tokens from a mel of the reference clip.

Attribute names (and so state-dict keys) follow the official checkpoint: ``encoder``,
``decoder`` (the vocoder), ``quantizer``, ``speaker_encoder``, ``prenet``, ``postnet``.
The mel transform holds only non-persistent buffers. Postnet is kept because its
weights are in the checkpoint (strict loading), though no inference path uses it.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..mel import MelSpectrogram
from .config import BiCodecConfig
from .feat_codec import Decoder, Encoder
from .quantizers import FactorizedVectorQuantize
from .speaker_encoder import SpeakerEncoder
from .wave_generator import WaveGenerator
from .weight_norm import fold_weight_norm


class BiCodec(nn.Module):
    def __init__(self, config: BiCodecConfig = BiCodecConfig()):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder)
        self.decoder = WaveGenerator(config.decoder)
        self.quantizer = FactorizedVectorQuantize(config.quantizer)
        self.speaker_encoder = SpeakerEncoder(config.speaker_encoder)
        self.prenet = Decoder(config.prenet)
        self.postnet = Decoder(config.postnet)
        m = config.mel_params
        self.mel_transformer = MelSpectrogram(m.sample_rate, m.n_fft, m.win_length, m.hop_length,
                                              m.mel_fmin, m.mel_fmax, m.num_mels)

    @property
    def hop_length(self) -> int:
        return self.decoder.hop_length

    @property
    def token_num(self) -> int:
        return self.speaker_encoder.token_num

    @property
    def global_codebook_size(self) -> int:
        return self.speaker_encoder.quantizer.codebook_size

    @property
    def semantic_codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def fold_weight_norm(self) -> int:
        return fold_weight_norm(self)

    # -- tokens -------------------------------------------------------------------------
    def mel(self, ref_wav: torch.Tensor) -> torch.Tensor:
        """(B, N) reference clips -> (B, n_mels, frames), float32."""
        return self.mel_transformer(ref_wav)

    def global_tokens(self, ref_wav: torch.Tensor) -> torch.Tensor:
        """(B, N) reference clips -> (B, 1, 32) int32 (one FSQ stage)."""
        mel = self.mel(ref_wav).to(self.speaker_encoder.project.weight.dtype)
        return self.speaker_encoder.tokenize(mel.transpose(1, 2))

    def semantic_tokens(self, feat: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, T, C) wav2vec2 features -> (B, T) int64; ``mask`` (B, 1, T) marks real frames."""
        z = self.encoder(feat.transpose(1, 2), mask=mask)
        return self.quantizer.tokenize(z)

    def tokenize(self, feat: torch.Tensor, ref_wav: torch.Tensor, mask: Optional[torch.Tensor] = None):
        """Returns (semantic (B, T), global (B, 1, 32)), in the reference's order."""
        return self.semantic_tokens(feat, mask), self.global_tokens(ref_wav)

    def d_vector(self, global_tokens: torch.Tensor) -> torch.Tensor:
        """(B, 1, 32) -> (B, out_dim)."""
        return self.speaker_encoder.detokenize(global_tokens)

    def detokenize(self, semantic_tokens: torch.Tensor, global_tokens: torch.Tensor,
                   mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """semantic (B, T), global (B, 1, 32) -> waveform (B, 1, T * hop_length)."""
        z_q = self.quantizer.detokenize(semantic_tokens)
        d = self.d_vector(global_tokens)
        x = self.prenet(z_q, d, mask=mask)
        x = x + d.unsqueeze(-1)
        return self.decoder(x, mask=mask)

    def x_vector(self, ref_wav: torch.Tensor) -> torch.Tensor:
        """(B, N) reference clips -> ECAPA x-vector (B, out_dim)."""
        mel = self.mel(ref_wav).to(self.speaker_encoder.project.weight.dtype)
        return self.speaker_encoder.x_vector(mel.transpose(1, 2))
