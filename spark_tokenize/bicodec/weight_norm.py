"""Convolutions stored with legacy weight norm (``weight_g`` / ``weight_v``).

The official checkpoint was saved from ``torch.nn.utils.weight_norm`` (dim 0), so the
keys are ``<name>.weight_g`` and ``<name>.weight_v``; the newer parametrization API
names them differently and would not load. weight = g * v / ||v||, the norm taken over
every dim except 0 (for a transposed convolution dim 0 is the *input* channels).
After loading, :func:`fold_weight_norm` replaces g and v by the plain weight once, so
inference does not renormalise on every call.
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
        return self._conv_forward(x, self.effective_weight(), self.bias)


class WNConvTranspose1d(_WeightNormMixin, nn.ConvTranspose1d):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv_transpose1d(
            x, self.effective_weight(), self.bias, self.stride, self.padding,
            self.output_padding, self.groups, self.dilation)


def fold_weight_norm(module: nn.Module) -> int:
    """Fold every weight-normed convolution under ``module``; returns how many."""
    n = 0
    for m in module.modules():
        if isinstance(m, _WeightNormMixin) and not m.folded:
            m.fold()
            n += 1
    return n
