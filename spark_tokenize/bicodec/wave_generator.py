"""The vocoder (``decoder`` in BiCodec): a DAC-style decoder, 320x upsampling to 16 kHz.

Like the backbones, every temporal convolution accepts an optional padding mask
(B, 1, T) at its own resolution and zeroes the padding first, so a padded batch
reproduces each clip's unpadded output.

CPU inference (``chunked``, the default) computes the same function differently,
because on the CPU the vocoder is bound by memory rather than arithmetic: at full
length every activation of a 6 s clip is ~40 MB, each one a fresh allocation that the
kernel must fault in page by page (a third of the vocoder's time in the reference).

- Activations are channels-last (B, C, 1, T): oneDNN convolves that layout without
  reordering to and from its blocked format, a 1x1 convolution is one matrix product
  over the channel axis, and a time slice is one contiguous block of memory.
- Each upsampling block runs over time chunks of about ``CHUNK_ELEMENTS`` values, each
  with enough context on both sides (``DecoderBlock.context``) that its kept centre is
  exact; the chunk-sized intermediates are reused by the allocator instead of faulted in.
- Each block's full-length output (up to ~40 MB for a 6 s clip, more than glibc ever
  recycles) is written into a buffer kept per thread and reused by the next call
  (``_block_output``), so its pages are faulted in once rather than on every call.
- Utterances longer than ``max_frames`` latent frames are decoded in segments that
  overlap by the vocoder's receptive field, so memory stays flat with length.

Every path gives the unchunked result to float rounding (tests compare them).
"""

from __future__ import annotations

import math
import threading
import weakref
from typing import Optional

import torch
from torch import nn

from .config import WaveGeneratorConfig
from .vocos import apply_mask
from .weight_norm import WNConv1d, WNConvTranspose1d

#: Values per time chunk in CPU inference (4 MiB of float32): small enough for malloc to
#: recycle instead of mapping fresh pages, large enough that per-call overhead is noise.
CHUNK_ELEMENTS = 1 << 20
#: Samples a residual stack (k7 convolutions with dilations 1, 3, 9) reaches on each side.
RESIDUAL_REACH = 3 * (1 + 3 + 9)

#: Per thread: module -> flat float buffer holding that block's last output.
_WORKSPACE = threading.local()


def _block_output(owner: nn.Module, b: int, c: int, t: int, like: torch.Tensor) -> torch.Tensor:
    """A channels-last (b, c, 1, t) output buffer for ``owner``, reused across calls.

    Reused only within one thread (concurrent decodes never share it) and only while the
    dtype, device and inference mode match; it grows to the longest output seen (at most
    ``max_frames`` latent frames' worth). The caller consumes it before the next call.
    """
    bufs = getattr(_WORKSPACE, "bufs", None)
    if bufs is None:
        bufs = _WORKSPACE.bufs = weakref.WeakKeyDictionary()
    n, flat = b * c * t, bufs.get(owner)
    if (flat is None or flat.numel() < n or flat.dtype != like.dtype or flat.device != like.device
            or flat.is_inference() != torch.is_inference_mode_enabled()):
        flat = bufs[owner] = torch.empty(n, dtype=like.dtype, device=like.device)
    return flat[:n].view(b, 1, t, c).permute(0, 3, 1, 2)


class Snake1d(nn.Module):
    """x + sin^2(alpha x) / alpha, one alpha per channel; (B, C, T) or (B, C, 1, T)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha if x.dim() == 3 else self.alpha.unsqueeze(-1)
        inv = (alpha + 1e-9).reciprocal()
        if torch.is_grad_enabled():
            return x + inv * torch.sin(alpha * x).pow(2)
        # One buffer instead of four; the same products and sum, so the same bits.
        t = torch.mul(x, alpha)
        t.sin_()
        t.square_()
        return t.mul_(inv).add_(x)


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
        return y.add_(x) if not torch.is_grad_enabled() else x + y


class DecoderBlock(nn.Module):
    """Snake -> transposed conv (x stride) -> residual units with dilation 1, 3, 9."""

    def __init__(self, input_dim: int, output_dim: int, kernel_size: int, stride: int):
        super().__init__()
        self.stride, self.output_dim = stride, output_dim
        #: Input frames of context that make a chunk's centre exact: what the residual
        #: stack reaches at the output rate, plus the transposed kernel, in input frames.
        self.context = -(-(RESIDUAL_REACH + kernel_size) // stride)
        self.block = nn.Sequential(
            Snake1d(input_dim),
            WNConvTranspose1d(input_dim, output_dim, kernel_size=kernel_size, stride=stride,
                              padding=(kernel_size - stride) // 2),
            ResidualUnit(output_dim, dilation=1),
            ResidualUnit(output_dim, dilation=3),
            ResidualUnit(output_dim, dilation=9),
        )

    def _run(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        snake, up, *units = self.block
        x = up(apply_mask(snake(x), mask))
        if mask is not None:
            mask = mask.repeat_interleave(self.stride, dim=-1)
        for unit in units:
            x = unit(x, mask)
        return x

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None):
        """(B, C_in, T) or channels-last (B, C_in, 1, T) -> (B, C_out, [1,] T * stride), mask."""
        out_mask = None if mask is None else mask.repeat_interleave(self.stride, dim=-1)
        if x.dim() == 3:
            return self._run(x, mask), out_mask
        s, t = self.stride, x.shape[-1]
        out = _block_output(self, x.shape[0], self.output_dim, t * s, x)  # valid until the next call
        step = max(16, CHUNK_ELEMENTS // (self.output_dim * s))
        for a in range(0, t, step):
            e = min(t, a + step)
            lo, hi = max(0, a - self.context), min(t, e + self.context)
            h = self._run(x[..., lo:hi], None if mask is None else mask[..., lo:hi])
            out[..., a * s:e * s] = h[..., (a - lo) * s:(e - lo) * s]
        return out, out_mask


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
        #: CPU inference in channels-last time chunks (see the module doc); False = plain.
        self.chunked = True
        #: Longer inputs are decoded in overlapping segments of this many latent frames.
        self.max_frames = 1000

    def receptive_context(self) -> int:
        """Latent frames on each side that can influence an output frame (12 for BiCodec)."""
        *_, last, _ = self.model
        reach = last.kernel_size[0] // 2  # output samples
        for block in reversed(list(self.model)[1:-3]):
            up = block.block[1]
            reach = -(-(reach + RESIDUAL_REACH + up.kernel_size[0]) // up.stride[0])
        return reach + self.model[0].kernel_size[0] // 2

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        t = x.shape[-1]
        if torch.is_grad_enabled() or t <= self.max_frames:
            return self._decode(x, mask)
        ctx, hop, parts = self.receptive_context(), self.hop_length, []
        for a in range(0, t, self.max_frames):
            e = min(t, a + self.max_frames)
            lo, hi = max(0, a - ctx), min(t, e + ctx)
            y = self._decode(x[..., lo:hi], None if mask is None else mask[..., lo:hi])
            parts.append(y[..., (a - lo) * hop:(e - lo) * hop])
        return torch.cat(parts, dim=-1)

    def _decode(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        first, *blocks, snake, last, tanh = self.model
        x = first(apply_mask(x, mask))
        if self.chunked and x.device.type == "cpu" and not torch.is_grad_enabled():
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)  # (B, C, 1, T)
            mask = None if mask is None else mask.unsqueeze(2)
        for block in blocks:
            x, mask = block(x, mask)
        if x.dim() == 4:
            return self._tail_chunked(x, mask)
        return tanh(last(apply_mask(snake(x), mask)))

    def _tail_chunked(self, x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Snake -> conv k7 -> tanh over time chunks of the last block's (B, C, 1, T) output:
        at full length the Snake alone would be a fresh 40 MB array for a 6 s clip."""
        snake, last, tanh = list(self.model)[-3:]
        b, _, _, t = x.shape
        reach = last.kernel_size[0] // 2 * last.dilation[0]
        out = x.new_empty((b, last.out_channels, t))
        step = max(16, CHUNK_ELEMENTS // x.shape[1])
        for a in range(0, t, step):
            e = min(t, a + step)
            lo, hi = max(0, a - reach), min(t, e + reach)
            m = None if mask is None else mask[..., lo:hi]
            y = tanh(last(apply_mask(snake(x[..., lo:hi]), m)))  # (B, C_out, 1, hi - lo)
            out[..., a:e] = y[:, :, 0, a - lo:e - lo]
        return out
