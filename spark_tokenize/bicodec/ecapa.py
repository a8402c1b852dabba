"""ECAPA-TDNN (512 channels, global-context attentive statistics pooling), wespeaker style.

BiCodec uses its frame-level features (B, 1536, T) for the global tokens; the x-vector
head (pooling -> BatchNorm -> Linear) is in the checkpoint and serves as a speaker
embedding for similarity checks. Every conv block runs conv -> ReLU -> BatchNorm.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Conv1dReluBn(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, padding: int = 0,
                 dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(F.relu(self.conv(x)))


class Res2Conv1dReluBn(nn.Module):
    """Res2Net block: split channels into ``scale`` chunks; chunk i>0 adds the previous
    branch output before its conv; the last chunk passes through untouched."""

    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int):
        super().__init__()
        self.scale = scale
        self.width = channels // scale
        self.nums = scale if scale == 1 else scale - 1
        self.convs = nn.ModuleList(
            [nn.Conv1d(self.width, self.width, kernel_size, padding=padding, dilation=dilation)
             for _ in range(self.nums)])
        self.bns = nn.ModuleList([nn.BatchNorm1d(self.width) for _ in range(self.nums)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.split(x, self.width, dim=1)
        out = []
        sp = chunks[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            if i >= 1:
                sp = sp + chunks[i]
            sp = bn(F.relu(conv(sp)))
            out.append(sp)
        if self.scale != 1:
            out.append(chunks[self.nums])
        return torch.cat(out, dim=1)


class SEConnect(nn.Module):
    """Squeeze-excitation: time mean -> bottleneck -> sigmoid channel gate."""

    def __init__(self, channels: int, bottleneck: int = 128):
        super().__init__()
        self.linear1 = nn.Linear(channels, bottleneck)
        self.linear2 = nn.Linear(bottleneck, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.linear2(F.relu(self.linear1(x.mean(dim=2)))))
        return x * s.unsqueeze(2)


class SERes2Block(nn.Module):
    def __init__(self, channels: int, kernel_size: int, padding: int, dilation: int, scale: int):
        super().__init__()
        self.se_res2block = nn.Sequential(
            Conv1dReluBn(channels, channels),
            Res2Conv1dReluBn(channels, kernel_size, padding, dilation, scale),
            Conv1dReluBn(channels, channels),
            SEConnect(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.se_res2block(x)


class ASTP(nn.Module):
    """Attentive statistics pooling with global context (frame, utterance mean, utterance std)."""

    def __init__(self, in_dim: int, bottleneck_dim: int = 128):
        super().__init__()
        self.linear1 = nn.Conv1d(in_dim * 3, bottleneck_dim, kernel_size=1)
        self.linear2 = nn.Conv1d(bottleneck_dim, in_dim, kernel_size=1)
        self.out_dim = 2 * in_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean_ctx = x.mean(dim=-1, keepdim=True).expand_as(x)
        std_ctx = torch.sqrt(torch.var(x, dim=-1, keepdim=True) + 1e-7).expand_as(x)
        alpha = torch.tanh(self.linear1(torch.cat((x, mean_ctx, std_ctx), dim=1)))
        alpha = torch.softmax(self.linear2(alpha), dim=2)
        mean = torch.sum(alpha * x, dim=2)
        var = torch.sum(alpha * x ** 2, dim=2) - mean ** 2
        std = torch.sqrt(var.clamp(min=1e-7))
        return torch.cat([mean, std], dim=1)


class ECAPATDNN(nn.Module):
    """(B, T, feat_dim) mel frames -> (x-vector (B, embed_dim), frame features (B, 3*channels, T))."""

    def __init__(self, feat_dim: int, embed_dim: int, channels: int = 512):
        super().__init__()
        self.layer1 = Conv1dReluBn(feat_dim, channels, kernel_size=5, padding=2)
        self.layer2 = SERes2Block(channels, kernel_size=3, padding=2, dilation=2, scale=8)
        self.layer3 = SERes2Block(channels, kernel_size=3, padding=3, dilation=3, scale=8)
        self.layer4 = SERes2Block(channels, kernel_size=3, padding=4, dilation=4, scale=8)
        self.conv = nn.Conv1d(channels * 3, channels * 3, kernel_size=1)
        self.pool = ASTP(channels * 3)
        self.bn = nn.BatchNorm1d(self.pool.out_dim)
        self.linear = nn.Linear(self.pool.out_dim, embed_dim)

    def frame_features(self, mels: torch.Tensor) -> torch.Tensor:
        x = mels.permute(0, 2, 1)
        out1 = self.layer1(x)
        out2 = self.layer2(out1)
        out3 = self.layer3(out2)
        out4 = self.layer4(out3)
        return F.relu(self.conv(torch.cat([out2, out3, out4], dim=1)))

    def x_vector(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.bn(self.pool(features)))

    def forward(self, mels: torch.Tensor):
        features = self.frame_features(mels)
        return self.x_vector(features), features
