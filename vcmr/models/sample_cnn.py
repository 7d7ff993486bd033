"""SampleCNN: a raw-waveform encoder (Lee et al. 2017) as used by CLMR and VCMR.

The stem is a strided convolution (kernel = stride = ``first_block_params.conv_size``), then
``n_blocks`` blocks of Conv1d(k) - BatchNorm - activation - MaxPool(pool_size), then (as in the
authors' code) a last block Conv1d(kernel ``last_block_kernel_size``, out ``output_size``) -
BatchNorm - activation whose output is the embedding. The input length must be
``conv_size * pool_size ** n_blocks`` (98415 = 5 * 3**9 in the paper), so the time axis is 1
after the last pooling. The paper geometry has 2,435,072 parameters.

``blocks[i]`` is the authors' ``all_blocks[i]`` (stem, the n_blocks blocks, the last block), so
their checkpoints map key by key. ``last_block_kernel_size: 0`` builds no last block: the
last pooled block's output is the embedding, and ``fc`` maps its channels to ``output_size``
when they differ. The encoder returns features only; projectors and classifier heads live in ``heads.py``.
"""
from __future__ import annotations

import torch
from torch import nn

from vcmr.config import ConfigError, EncoderConfig, validate

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU, "silu": nn.SiLU}


def valid_audio_length(conv_size: int, pool_size: int, n_blocks: int) -> int:
    return conv_size * pool_size ** n_blocks


def check_audio_length(cfg: EncoderConfig) -> None:
    """Raise a ConfigError naming the nearest valid lengths when audio_length does not fit."""
    conv, pool, n = cfg.first_block_params.conv_size, cfg.pool_size, cfg.n_blocks
    expected = valid_audio_length(conv, pool, n)
    if cfg.audio_length == expected:
        return
    options = sorted({valid_audio_length(c, pool, b)
                      for c in range(1, 10) for b in range(max(1, n - 2), n + 3)},
                     key=lambda v: abs(v - cfg.audio_length))[:3]
    raise ConfigError(
        f"audio_length={cfg.audio_length} does not match the SampleCNN "
        f"(first conv {conv} x pool {pool}^{n} blocks = {expected}). Set audio_length to "
        f"{expected}, or change n_blocks / first_block_params.conv_size; nearest valid lengths: "
        + ", ".join(str(o) for o in sorted(options)))


class SampleCNN(nn.Module):
    """(batch, samples) or (batch, 1, samples) waveform -> (batch, output_size) features."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        validate(cfg)  # e.g. an even last_block_kernel_size would leave a time axis of 2
        check_audio_length(cfg)
        self.cfg = cfg
        act = _ACTIVATIONS[cfg.activation]
        stem_ch, conv = cfg.first_block_params.out_channels, cfg.first_block_params.conv_size
        blocks = [nn.Sequential(
            nn.Conv1d(1, stem_ch, kernel_size=conv, stride=conv),
            nn.BatchNorm1d(stem_ch), act())]
        in_ch = stem_ch
        for out_ch in cfg.n_channels:
            blocks.append(nn.Sequential(
                nn.Conv1d(in_ch, out_ch, kernel_size=cfg.conv_kernel_size,
                          padding=cfg.conv_kernel_size // 2),
                nn.BatchNorm1d(out_ch), act(), nn.MaxPool1d(cfg.pool_size)))
            in_ch = out_ch
        k = cfg.last_block_kernel_size
        if k:
            blocks.append(nn.Sequential(
                nn.Conv1d(in_ch, cfg.output_size, kernel_size=k, padding=k // 2),
                nn.BatchNorm1d(cfg.output_size), act()))
            in_ch = cfg.output_size
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Identity() if cfg.output_size == in_ch else nn.Linear(in_ch, cfg.output_size)
        self.output_size = cfg.output_size
        self.sample_rate = cfg.sample_rate
        self.audio_length = cfg.audio_length

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        if x.shape[-1] != self.audio_length:
            raise ValueError(f"SampleCNN expects {self.audio_length} samples per clip, got "
                             f"{x.shape[-1]}; crop or pad the audio (vcmr.load_model(...).embed does)")
        if x.shape[0] == 1 and self.cfg.last_block_kernel_size and self.blocks[-1].training:
            raise ValueError("SampleCNN in training mode needs at least 2 clips per batch: the last "
                             "block's BatchNorm normalises one value per channel per clip; call "
                             ".eval() to embed single clips")
        for block in self.blocks:
            x = block(x)
        return self.fc(x.flatten(1))

    def freeze_blocks(self, n: int, batchnorm: str = "frozen") -> None:
        """Freeze the weights of the first ``n`` blocks (the stem is block 0).

        ``batchnorm="frozen"``: their BatchNorm layers stay in eval mode (running statistics
        kept). ``"adapt"``: they follow the module's mode, so in training they normalise with
        batch statistics and their running statistics move, as in the authors' stage 2 (which
        only turns off the gradients of the first blocks).
        """
        if batchnorm not in ("frozen", "adapt"):
            raise ValueError(f"batchnorm={batchnorm!r}: choose 'frozen' or 'adapt'")
        for block in self.blocks[:n]:
            for p in block.parameters():
                p.requires_grad_(False)
        self._eval_blocks = n if batchnorm == "frozen" else 0
        self.train(self.training)

    def train(self, mode: bool = True):
        frozen = getattr(self, "_eval_blocks", 0)
        super().train(mode and frozen < len(self.blocks))  # every block frozen: eval as a whole
        for block in self.blocks[:frozen]:
            block.eval()  # frozen blocks keep their BatchNorm running statistics
        return self
