"""Video branch of stage 2: per-second frame features -> joint-space embedding.

(batch, seconds, feature_dim) -> 2-layer LSTM (hidden = feature_dim as in the paper, or
``hidden``; dropout 0.1) -> flatten -> Linear(seconds * hidden, 512) -> ReLU. A projector (heads.projector) maps it to the
128-D joint space, as for audio.
"""
from __future__ import annotations

import torch
from torch import nn


def video_seconds(audio_length: int, sample_rate: int) -> int:
    """Seconds of video that accompany one audio crop: round(audio_length / sample_rate)."""
    return max(1, round(audio_length / sample_rate))


class VideoEncoder(nn.Module):
    def __init__(self, feature_dim: int, n_seconds: int, layers: int = 2, dropout: float = 0.1,
                 output_size: int = 512, hidden: int | None = None):
        super().__init__()
        self.feature_dim, self.n_seconds, self.output_size = feature_dim, n_seconds, output_size
        self.hidden = hidden or feature_dim
        self.lstm = nn.LSTM(feature_dim, self.hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.fc = nn.Sequential(nn.Linear(n_seconds * self.hidden, output_size), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1:] != (self.n_seconds, self.feature_dim):
            raise ValueError(f"VideoEncoder expects (batch, {self.n_seconds}, {self.feature_dim}) "
                             f"per-second features, got {tuple(x.shape)}")
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN has no bf16 LSTM primitive on some CPUs (RuntimeError "could not create a
            # primitive descriptor"): under CPU autocast the LSTM runs in float32
            with torch.autocast("cpu", enabled=False):
                out, _ = self.lstm(x.float())
        else:
            out, _ = self.lstm(x)
        return self.fc(out.flatten(1))
