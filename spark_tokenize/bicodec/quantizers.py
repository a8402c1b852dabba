"""BiCodec's two quantizers: the factorized VQ (semantic tokens) and the residual FSQ (global tokens)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .config import QuantizerConfig
from .weight_norm import WNConv1d


class FactorizedVectorQuantize(nn.Module):
    """Semantic VQ: project to a low-dimensional code space and pick the nearest codebook row.

    Tokenizing compares L2-normalised projections with L2-normalised codebook rows
    (nearest by squared distance, i.e. by cosine); decoding looks up the *raw* rows.
    """

    def __init__(self, c: QuantizerConfig):
        super().__init__()
        if c.input_dim == c.codebook_dim:
            raise ValueError("input_dim == codebook_dim (no projection) is not the BiCodec architecture")
        self.codebook_size, self.codebook_dim = c.codebook_size, c.codebook_dim
        self.in_project = WNConv1d(c.input_dim, c.codebook_dim, kernel_size=1)
        self.out_project = WNConv1d(c.codebook_dim, c.input_dim, kernel_size=1)
        self.codebook = nn.Embedding(c.codebook_size, c.codebook_dim)
        # EMA usage statistics from training; kept only because the checkpoint has them.
        self.register_buffer("cluster_size", torch.zeros(c.codebook_size))

    def tokenize(self, z: torch.Tensor) -> torch.Tensor:
        """(B, input_dim, T) -> (B, T) int64."""
        z_e = self.in_project(z).float()
        b = z_e.shape[0]
        enc = F.normalize(z_e.transpose(1, 2).reshape(-1, self.codebook_dim))
        cb = F.normalize(self.codebook.weight.float())
        # The reference ranks by squared distance written out in full; keeping the same
        # formula keeps the rounding (and so near-ties) the same.
        dist = enc.pow(2).sum(1, keepdim=True) - 2 * enc @ cb.t() + cb.pow(2).sum(1, keepdim=True).t()
        return (-dist).max(1)[1].reshape(b, -1)

    def detokenize(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 -> (B, input_dim, T)."""
        z_q = F.embedding(tokens, self.codebook.weight).transpose(1, 2)
        return self.out_project(z_q)


class FSQ(nn.Module):
    """Finite scalar quantization of ``len(levels)``-dim vectors (no projections of its own)."""

    def __init__(self, levels: Sequence[int]):
        super().__init__()
        self.levels = [int(v) for v in levels]
        self.codebook_size = math.prod(self.levels)
        self.init_buffers()

    def init_buffers(self, device=None) -> None:
        levels_t = torch.tensor(self.levels, dtype=torch.int32, device=device)
        basis = torch.cumprod(torch.tensor([1] + self.levels[:-1], device=device), dim=0, dtype=torch.int32)
        self.register_buffer("_levels", levels_t, persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    def bound(self, z: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        half_l = (self._levels - 1) * (1 + eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """Codes in [-1, 1] on each dimension's grid."""
        return torch.round(self.bound(z)) / (self._levels // 2)

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        half = self._levels // 2
        digits = codes * half + half
        # Dimension 0 is the least significant digit.
        return (digits * self._basis).sum(dim=-1).to(torch.int32)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        digits = (indices.unsqueeze(-1) // self._basis) % self._levels
        half = self._levels // 2
        return (digits - half) / half


class ResidualFSQ(nn.Module):
    """Project (dim -> len(levels)), quantize with ``num_quantizers`` FSQ stages, project back.

    Channels-first like the reference: input (B, dim, N); indices (B, num_quantizers, N).
    Quantization always runs in float32.
    """

    def __init__(self, dim: int, levels: Sequence[int], num_quantizers: int):
        super().__init__()
        codebook_dim = len(levels)
        if codebook_dim == dim:
            raise ValueError("ResidualFSQ without projections is not the BiCodec architecture")
        self.project_in = nn.Linear(dim, codebook_dim)
        self.project_out = nn.Linear(codebook_dim, dim)
        self.layers = nn.ModuleList([FSQ(levels) for _ in range(num_quantizers)])
        self.levels, self.num_quantizers = [int(v) for v in levels], num_quantizers
        self.codebook_size = self.layers[0].codebook_size
        self.init_buffers()

    def init_buffers(self, device=None) -> None:
        levels_t = torch.tensor(self.levels, dtype=torch.float32, device=device)
        self.register_buffer("scales", torch.stack([(levels_t - 1) ** -i for i in range(self.num_quantizers)]),
                             persistent=False)

    def forward(self, x: torch.Tensor):
        """(B, dim, N) -> (quantized (B, dim, N), indices (B, num_quantizers, N) int32)."""
        x = self.project_in(x.transpose(1, 2)).float()
        residual = x
        quantized_out = torch.zeros_like(x)
        all_indices = []
        for layer, scale in zip(self.layers, self.scales):
            codes = layer.quantize(residual / scale)
            all_indices.append(layer.codes_to_indices(codes))
            q = codes * scale
            residual = residual - q
            quantized_out = quantized_out + q
        out = self.project_out(quantized_out.to(self.project_out.weight.dtype))
        return out.transpose(1, 2), torch.stack(all_indices, dim=1)

    def output_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, N, num_quantizers) -> (B, N, dim)."""
        codes = 0.0
        for q, (layer, scale) in enumerate(zip(self.layers, self.scales)):
            codes = codes + layer.indices_to_codes(indices[..., q].long()) * scale
        return self.project_out(codes.to(self.project_out.weight.dtype))
