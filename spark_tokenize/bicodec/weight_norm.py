"""Convolutions stored with legacy weight norm (``weight_g`` / ``weight_v``).

The official checkpoint was saved from ``torch.nn.utils.weight_norm`` (dim 0), so the
keys are ``<name>.weight_g`` and ``<name>.weight_v``; the newer parametrization API
names them differently and would not load. weight = g * v / ||v||, the norm taken over
every dim except 0 (for a transposed convolution dim 0 is the *input* channels).
After loading, :func:`fold_weight_norm` replaces g and v by the plain weight once, so
inference does not renormalise on every call.

Both convolutions also take channels-last (B, C, 1, T) input, the vocoder's CPU layout
(see ``wave_generator``): they run as 2-D convolutions with a (C_out, C_in, 1, k)
channels-last copy of the weight, made once per weight and kept.
"""

from __future__ import annotations

import torch
from torch import nn


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

    def weight_2d(self) -> torch.Tensor:
        """The weight as a channels-last (., ., 1, k) tensor, cached while the weight is unchanged."""
        w = self.effective_weight()
        key = (w.data_ptr(), w._version, w.device, w.dtype)
        if getattr(self, "_weight_2d_key", None) != key:
            self._weight_2d = w.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
            self._weight_2d_key = key
        return self._weight_2d

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
        return nn.functional.conv_transpose2d(
            x, self.weight_2d(), self.bias, (1, self.stride[0]), (0, self.padding[0]),
            (0, self.output_padding[0]), self.groups, (1, self.dilation[0]))


def fold_weight_norm(module: nn.Module) -> int:
    """Fold every weight-normed convolution under ``module``; returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, _WeightNormMixin) and not m.folded:
            m.fold()
            n += 1
    return n
