"""A vcmr model as a MARBLE v2 encoder (https://github.com/a43992899/MARBLE), for its probes.

    encoder:
      class_path: vcmr.integrations.marble.VcmrEncoder
      init_args:
        model: hf://ORG/NAME          # or a .ckpt / .safetensors file: anything vcmr.load_model reads
        token_rate: 1                  # tokens per second (label_freq of frame-level tasks)

MARBLE builds its encoder from the YAML's ``class_path`` and ``init_args``, calls
``forward(wave)`` on (batch, samples) audio at the encoder's sampling rate and reads a tuple of
per-layer hidden states, each (batch, tokens, features), which its ``emb_transforms``
(``LayerSelector``, ``MLPReduce``, ``TimeAvgPool``) stack along a new layer axis. The class
declares what MARBLE's encoders declare: ``NAME``, ``SAMPLING_RATE``, ``TOKEN_RATE``,
``NUM_FEATURES`` and ``N_TRANSFORMER_LAYERS`` (they return that many layers plus one); the
class values describe the paper model, each instance's describe its model file.

Tokens. SampleCNN has no time axis at its output: it maps one window of ``segment_samples``
(98415 samples, 6.15 s in the paper) to one vector, and its blocks' outputs differ in channels
and time resolution, so they cannot be stacked as MARBLE's layers are. A token is therefore the
model's window embedding (what ``vcmr.load_model(...).embed`` gives) of the window CENTRED on
the token: token ``k`` of ``token_rate`` per second is centred at ``(k + 0.5) / token_rate``
seconds, zero-padded where the window runs past either end (the rule of HEAR timestamps in
vcmr.hear). A clip of ``T`` samples gives ``max(1, floor(T * token_rate / SAMPLING_RATE))``
tokens: 30 per 30 s at 1 Hz. One layer is returned (``N_TRANSFORMER_LAYERS = 0``): the encoder
output, or with ``space="joint"`` a stage-2 model's audio projector output.

Frozen by default (``train_mode="freeze"``: no parameter needs gradients, eval mode); "full"
lets gradients reach the weights. BatchNorm always uses its running statistics, as everywhere
in vcmr's inference. Nothing of MARBLE is imported here: MARBLE's ``BaseTask`` takes any
``torch.nn.Module`` as its encoder.
"""
from __future__ import annotations

import torch
from torch import nn

from vcmr.errors import VcmrError
from vcmr.io.load import load_model

TRAIN_MODES = ("freeze", "full")


def token_centres(n_samples: int, sample_rate: int, token_rate: int) -> torch.Tensor:
    """Centre (in samples) of each token's window: ``round((k + 0.5) * sample_rate / token_rate)``."""
    n = max(1, n_samples * token_rate // sample_rate)
    k = torch.arange(n, dtype=torch.float64)
    return torch.round((k + 0.5) * sample_rate / token_rate).to(torch.int64)


class VcmrEncoder(nn.Module):
    """MARBLE v2 encoder around ``vcmr.load_model(model)``; see the module docstring."""

    NAME = "vcmr"
    SAMPLING_RATE = 16000  # the paper model's; an instance holds its own model's
    TOKEN_RATE = 1
    NUM_FEATURES = 512
    N_TRANSFORMER_LAYERS = 0  # no transformer: one hidden state (the window embedding)

    def __init__(self, model: str, token_rate: int = 1, space: str = "encoder",
                 train_mode: str = "freeze", batch_size: int = 32, device: str | None = "cpu"):
        super().__init__()
        if train_mode not in TRAIN_MODES:
            raise VcmrError(f"train_mode={train_mode!r}: choose one of {', '.join(TRAIN_MODES)} "
                            f"(LoRA adapters do not apply to SampleCNN's convolutions)")
        if isinstance(token_rate, bool) or not isinstance(token_rate, int) or token_rate < 1:
            raise VcmrError(f"token_rate must be a whole number of tokens per second >= 1, got "
                            f"{token_rate!r} (the label_freq of MARBLE's frame-level tasks)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise VcmrError(f"batch_size must be a positive integer (windows per forward pass), got {batch_size!r}")
        self.model = load_model(model, device)  # Lightning moves it with the task afterwards
        self.NUM_FEATURES = self.model.space_size(space)  # a clear error for a space the model lacks
        self.head = self.model.net.projector if space == "joint" else nn.Identity()
        self.SAMPLING_RATE = self.sample_rate = self.model.sample_rate
        self.TOKEN_RATE, self.space, self.train_mode = token_rate, space, train_mode
        self.NAME = f"vcmr-{self.model.stage}"
        self.batch_size = batch_size
        if token_rate > self.SAMPLING_RATE:
            raise VcmrError(f"token_rate={token_rate} is above the model's sampling rate "
                            f"({self.SAMPLING_RATE} Hz); give at most one token per sample")
        for p in self.parameters():
            p.requires_grad_(train_mode == "full")
        self.eval()

    def train(self, mode: bool = True):
        return super().train(mode and self.train_mode == "full")  # frozen: eval, whatever the task does

    def forward(self, x: torch.Tensor, input_len: torch.Tensor | None = None, **kwargs) -> tuple[torch.Tensor]:
        """(batch, samples) or (batch, 1, samples) audio at ``SAMPLING_RATE`` -> a 1-tuple of
        (batch, tokens, NUM_FEATURES). ``input_len`` is accepted as MARBLE passes it and not
        used: padded tails are embedded as the zeros they are."""
        if x.dim() == 3 and x.shape[1] == 1:
            x = x[:, 0]
        if x.dim() != 2 or x.shape[1] == 0:
            raise VcmrError(f"{self.NAME}: expected (batch, samples) mono audio at {self.SAMPLING_RATE} "
                            f"Hz, got a tensor of shape {tuple(x.shape)}")
        weight = next(self.model.parameters())
        x = x.to(device=weight.device, dtype=weight.dtype)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.train_mode == "full"):
            return (self._tokens(x),)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        seg, (batch, n_samples) = self.model.segment_samples, x.shape
        centres = token_centres(n_samples, self.SAMPLING_RATE, self.TOKEN_RATE)
        # with seg // 2 zeros in front, the window centred on sample c starts at c
        tail = max(0, int(centres[-1]) + seg - (n_samples + seg // 2))
        view = nn.functional.pad(x, (seg // 2, tail)).unfold(1, seg, 1)  # a view: no copies yet
        per_call = max(1, self.batch_size // batch)
        out = [self.head(self.model.net.encoder(view[:, chunk].reshape(-1, seg))).reshape(batch, len(chunk), -1)
               for chunk in centres.to(x.device).split(per_call)]
        return torch.cat(out, dim=1)
