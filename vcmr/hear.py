"""HEAR benchmark interface (https://hearbenchmark.com): evaluate a vcmr model with hear-eval-kit.

    python -m heareval.embeddings.runner vcmr.hear --model path/to/model.safetensors

* ``load_model(model_file_path)``: a .ckpt (any stage), an exported .safetensors file or a
  registry name. The returned module has ``sample_rate`` (the model's, 16000 for the paper's
  models), ``scene_embedding_size`` and ``timestamp_embedding_size`` (both the encoder's
  ``embedding_size``, 512 in the paper).
* ``get_scene_embeddings(audio, model)``: audio (n_sounds, n_samples) at ``sample_rate`` ->
  (n_sounds, embedding_size): the mean over non-overlapping segments (``embed_song``; the last
  partial segment zero-padded).
* ``get_timestamp_embeddings(audio, model)``: -> embeddings (n_sounds, n_timestamps,
  embedding_size) and timestamps (n_sounds, n_timestamps) in milliseconds. Timestamp ``k`` is
  ``k * timestamp_hop_ms`` (0, hop, 2 hop, ... while < the sound's duration) and its embedding is
  that of the model window CENTRED on it, zero-padded where it runs past either end of the sound.
  The window is long (6.15 s in the paper), so neighbouring frames share most of their input;
  the hop (default 250 ms; HEAR suggests 50 ms, at 5x the compute) trades time resolution for
  speed: ``load_model(path, timestamp_hop_ms=50)``.

Batches of sounds are zero-padded to the same length by HEAR; embeddings are computed on the
whole padded array, as the kit expects.
"""
from __future__ import annotations

import torch
from torch import nn

from vcmr.errors import VcmrError

DEFAULT_HOP_MS = 250.0


class HearModel(nn.Module):
    """Wraps an ``EmbeddingModel`` with the attributes the HEAR API requires."""

    def __init__(self, model, timestamp_hop_ms: float = DEFAULT_HOP_MS):
        super().__init__()
        if timestamp_hop_ms <= 0:
            raise VcmrError(f"timestamp_hop_ms must be positive, got {timestamp_hop_ms}")
        self.model = model
        self.sample_rate = model.sample_rate
        self.scene_embedding_size = model.embedding_size
        self.timestamp_embedding_size = model.embedding_size
        self.timestamp_hop_ms = float(timestamp_hop_ms)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "", timestamp_hop_ms: float = DEFAULT_HOP_MS,
               device=None) -> HearModel:
    if not model_file_path:
        from vcmr.pretrained import describe_available
        raise VcmrError("vcmr.hear.load_model needs model_file_path: a .ckpt from vcmr training, "
                        f"a .safetensors file from `vcmr export`, or a pretrained name "
                        f"({describe_available()})")
    from vcmr.api import load_model as _load
    return HearModel(_load(model_file_path, device), timestamp_hop_ms)


def _check_audio(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.dim() != 2:
        raise VcmrError(f"HEAR audio must be a tensor (n_sounds, n_samples) at "
                        f"{model.sample_rate} Hz, got {getattr(audio, 'shape', type(audio))}")
    return audio.detach().to(torch.float32)


def _windows(x: torch.Tensor, starts: torch.Tensor, length: int) -> torch.Tensor:
    """(n_samples,) -> (len(starts), length) windows, zero outside [0, n_samples)."""
    lead = int(max(0, -int(starts.min())))
    tail = int(max(0, int(starts.max()) + length - x.shape[0]))
    padded = torch.nn.functional.pad(x, (lead, tail))
    return padded.unfold(0, length, 1)[starts + lead]


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    audio = _check_audio(audio, model)
    m, seg = model.model, model.model.segment_samples
    n_sounds, n_samples = audio.shape
    hop = model.timestamp_hop_ms / 1000.0 * model.sample_rate
    n_frames = max(1, int(torch.ceil(torch.tensor(n_samples / hop)).item()))
    centres = torch.round(torch.arange(n_frames, dtype=torch.float64) * hop).long()
    starts = centres - seg // 2
    emb = torch.stack([m.embed_segments(_windows(a.cpu(), starts, seg)) for a in audio])
    ts = (centres.to(torch.float64) * 1000.0 / model.sample_rate).to(torch.float32)
    return emb, ts.unsqueeze(0).expand(n_sounds, -1).to(emb.device).contiguous()


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    audio = _check_audio(audio, model)
    m = model.model
    out = [torch.from_numpy(m.embed_song(a.cpu().numpy(), m.sample_rate)) for a in audio]
    if not out:
        return torch.zeros(0, model.scene_embedding_size)
    return torch.stack(out).to(m.device)
