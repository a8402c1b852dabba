"""Linear-magnitude mel spectrogram (the BiCodec global branch's front end), without torchaudio.

Matches torchaudio's ``MelSpectrogram(power=1, norm="slaney", mel_scale="slaney")`` with
its defaults: periodic Hann window of ``win_length`` centred in ``n_fft``, ``center=True``
with reflect padding, not normalised. The filterbank is computed in float32 with the
same formulas, so the result agrees with the reference to float rounding.

The window and filterbank are non-persistent buffers: the official checkpoint does not
contain them, so they must stay out of the state dict.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

# Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel_slaney(freq: float) -> float:
    if freq >= _MIN_LOG_HZ:
        return _MIN_LOG_MEL + math.log(freq / _MIN_LOG_HZ) / _LOGSTEP
    return freq / _F_SP


def mel_to_hz_slaney(mels: torch.Tensor) -> torch.Tensor:
    freqs = _F_SP * mels
    log_part = mels >= _MIN_LOG_MEL
    return torch.where(log_part, _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)), freqs)


def slaney_mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int,
                          sample_rate: int) -> torch.Tensor:
    """Triangular filters on the Slaney mel scale with Slaney area normalisation.

    Returns (n_freqs, n_mels) float32, so that ``spec.T @ fb`` gives mel bands.
    """
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    m_pts = torch.linspace(hz_to_mel_slaney(f_min), hz_to_mel_slaney(f_max), n_mels + 2)
    f_pts = mel_to_hz_slaney(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp(torch.minimum(down, up), min=0.0)
    enorm = 2.0 / (f_pts[2:n_mels + 2] - f_pts[:n_mels])
    return fb * enorm.unsqueeze(0)


class MelSpectrogram(nn.Module):
    """(B, N) waveform -> (B, n_mels, frames) linear mel magnitude; frames = N // hop + 1."""

    def __init__(self, sample_rate: int = 16000, n_fft: int = 1024, win_length: int = 640,
                 hop_length: int = 320, f_min: float = 10.0, f_max: Optional[float] = None,
                 n_mels: int = 128):
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.sample_rate, self.n_mels, self.f_min = sample_rate, n_mels, float(f_min)
        self.f_max = float(sample_rate // 2) if f_max is None else float(f_max)
        self.init_buffers()

    def init_buffers(self, device=None) -> None:
        """(Re)compute the window and filterbank, e.g. after building on the meta device."""
        self.register_buffer("window", torch.hann_window(self.win_length, periodic=True, device=device),
                             persistent=False)
        fb = slaney_mel_filterbank(self.n_fft // 2 + 1, self.f_min, self.f_max, self.n_mels, self.sample_rate)
        self.register_buffer("fb", fb.to(device) if device is not None else fb, persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        # The STFT runs in float32 whatever the model dtype (no half-precision FFT on CPU).
        spec = torch.stft(wav.float(), n_fft=self.n_fft, hop_length=self.hop_length,
                          win_length=self.win_length, window=self.window.float(), center=True,
                          pad_mode="reflect", normalized=False, onesided=True,
                          return_complex=True).abs()
        return torch.matmul(spec.transpose(-1, -2), self.fb.float()).transpose(-1, -2)
