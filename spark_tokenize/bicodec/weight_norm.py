"""Convolutions stored with legacy weight norm (``weight_g`` / ``weight_v``).

The official checkpoint was saved from ``torch.nn.utils.weight_norm`` (dim 0), so the
keys are ``<name>.weight_g`` and ``<name>.weight_v``; the newer parametrization API
names them differently and would not load. weight = g * v / ||v||, the norm taken over
every dim except 0 (for a transposed convolution dim 0 is the *input* channels).
After loading, :func:`fold_weight_norm` replaces g and v by the plain weight once, so
inference does not renormalise on every call.

Both convolutions also take channels-last (B, C, 1, T) input, the vocoder's CPU layout
(see ``wave_generator``): they run as 2-D convolutions with a (C_out, C_in, 1, k)
channels-last copy of the weight, made once per weight and kept. A wide transposed
convolution runs there as one matrix product and an overlap-add (``GEMM_MIN_IN_CHANNELS``).
"""

from __future__ import annotations

import torch
from torch import nn

#: Channels-last transposed convolutions with at least this many input channels run as
#: a matrix product plus overlap-add: for BiCodec's first upsampling (1536 -> 768, k16,
#: x8) that is ~28% less CPU time than oneDNN's kernel; for the narrower ones it is slower.
GEMM_MIN_IN_CHANNELS = 1024


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.norm(2, dim=tuple(range(1, v.dim())), keepdim=True)


class _WeightNormMixin:
    def _init_weight_norm(self) -> None:
        w = self.weight
        del self.weight  # stop being a parameter; it is derived from g and v until folded
        self.weight_g = nn.Parameter(_norm_except_dim0(w.detach()).clone())
        self.weight_v = nn.Parameter(w.detach().clone())

    @property
    def folded(self) -> bool:
        return "weight" in self._parameters

    def effective_weight(self) -> torch.Tensor:
        if self.folded:
            return self.weight
        return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))

    def _cached(self, name: str, make) -> torch.Tensor:
        """``make(weight)``, kept while the weight is unchanged."""
        w = self.effective_weight()
        key = (w.data_ptr(), w._version, w.device, w.dtype)
        if getattr(self, f"_{name}_key", None) != key:
            setattr(self, f"_{name}", make(w.detach()))
            setattr(self, f"_{name}_key", key)
        return getattr(self, f"_{name}")

    def weight_2d(self) -> torch.Tensor:
        """The weight as a channels-last (., ., 1, k) tensor."""
        return self._cached("weight_2d", lambda w: w.unsqueeze(2).contiguous(memory_format=torch.channels_last))

    def fold(self) -> None:
        """Replace g and v by the weight they define (the state dict then has ``weight``)."""
        with torch.no_grad():
            w = self.effective_weight().detach().clone()
        del self.weight_g
        del self.weight_v
        self.weight = nn.Parameter(w, requires_grad=False)


class WNConv1d(_WeightNormMixin, nn.Conv1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return self._conv_forward(x, self.effective_weight(), self.bias)
        if self.kernel_size[0] == 1 and self.groups == 1:
            # A pointwise convolution is a matrix product over the channels-last axis.
            w = self.effective_weight()[:, :, 0]
            return nn.functional.linear(x.permute(0, 2, 3, 1), w, self.bias).permute(0, 3, 1, 2)
        return nn.functional.conv2d(x, self.weight_2d(), self.bias, (1, self.stride[0]),
                                    (0, self.padding[0]), (1, self.dilation[0]), self.groups)


class WNConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return nn.functional.conv_transpose1d(
                x, self.effective_weight(), self.bias, self.stride, self.padding,
                self.output_padding, self.groups, self.dilation)
        if (self.in_channels >= GEMM_MIN_IN_CHANNELS and x.device.type == "cpu" and self.groups == 1
                and self.dilation[0] == 1 and self.output_padding[0] == 0 and self.kernel_size[0] >= self.stride[0]):
            return self._forward_gemm(x)
        return nn.functional.conv_transpose2d(
            x, self.weight_2d(), self.bias, (1, self.stride[0]), (0, self.padding[0]),
            (0, self.output_padding[0]), self.groups, (1, self.dilation[0]))


    def _forward_gemm(self, x: torch.Tensor) -> torch.Tensor:
        """Channels-last (B, C_in, 1, T) -> (B, C_out, 1, T_out), as a matrix product that
        gives every input frame its k output steps, then an overlap-add of those steps."""
        b, cin, _, t = x.shape
        k, s, p, cout = self.kernel_size[0], self.stride[0], self.padding[0], self.out_channels
        # weight (C_in, C_out, k) -> (C_in, k * C_out): one row per input channel
        rows = self._cached("weight_rows", lambda w: w.permute(0, 2, 1).reshape(cin, k * cout).contiguous())
        y = torch.mm(x.permute(0, 2, 3, 1).reshape(b * t, cin), rows).view(b, t, k, cout)
        n = -(-k // s)  # input frames whose steps land in one stride-long output span
        acc = x.new_empty((b, t + n - 1, s, cout))  # span i = output samples i*s .. i*s + s - 1
        acc[:, :t] = y[:, :, :s]
        acc[:, t:] = 0
        for j in range(1, n):
            w = min(s, k - j * s)
            acc[:, j:j + t, :w] += y[:, :, j * s:j * s + w]
        length = (t - 1) * s + k - 2 * p
        out = acc.view(b, (t + n - 1) * s, cout)[:, p:p + length]  # (B, T_out, C_out)
        out = out + self.bias if self.bias is not None else out.contiguous()
        return out.unsqueeze(1).permute(0, 3, 1, 2)


def fold_weight_norm(module: nn.Module) -> int:
    """Fold every weight-normed convolution under ``module``; returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, _WeightNormMixin) and not m.folded:
            m.fold()
            n += 1
    return n
