"""HEAR benchmark interface (https://hearbenchmark.com): evaluate a vcmr model with hear-eval-kit.

    python -m heareval.embeddings.runner vcmr.hear --model path/to/model.safetensors
    python -m heareval.embeddings.runner vcmr.hear --model hf://ORG/NAME \
        --model-options '{"timestamp_hop_ms": 25, "batch_size": 32}'

* ``load_model(model_file_path, timestamp_hop_ms=50, device=None, batch_size=None)``: a .ckpt
  (any stage), an exported .safetensors file or a Hub model (``hf://ORG/NAME[@REVISION]``),
  read by ``vcmr.io.load.load_model``. The returned module has ``sample_rate``, ``scene_embedding_size`` and
  ``timestamp_embedding_size`` (both the encoder's ``embedding_size``, 512 in the paper).
* ``sample_rate`` is a rate HEAR publishes its data at: the smallest of 16000, 22050, 32000,
  44100, 48000 Hz that is >= the model's own rate (48000 above that). Audio arrives at that
  rate and is resampled inside (soxr HQ) to the model's rate, so a model trained at 8 kHz (the
  demo's) declares 16000 and a CLMR-style 22.05 kHz model declares 22050.
* ``get_scene_embeddings(audio, model)``: audio (n_sounds, n_samples) -> (n_sounds, embedding_size):
  the mean over non-overlapping segments (the ``embed_song`` rule; the last partial segment
  zero-padded).
* ``get_timestamp_embeddings(audio, model)``: -> embeddings (n_sounds, n_timestamps,
  embedding_size) and timestamps (n_sounds, n_timestamps) in milliseconds. Timestamp ``k`` is
  ``k * timestamp_hop_ms`` for every ``k`` with ``k * hop <= duration`` (so they reach the end of
  the sound, as hear-baseline's do); the count is computed in exact integer arithmetic (48 kHz,
  50 ms, 20 min gives 24,001). Each embedding is that of the model window CENTRED on its
  timestamp, zero-padded where it runs past either end of the sound.

Cost: the default hop is 50 ms, the spacing HEAR asks for (its validator warns above it). Every
timestamp is one full model window (6.15 s in the paper), so one second of audio costs 20
windows: about 120 times the work of the scene embedding's non-overlapping segments, and 5 times
that of a 250 ms hop. ``timestamp_hop_ms`` trades time resolution for speed.

Batches: HEAR zero-pads a batch of sounds to one length; embeddings are computed on the padded
array, as the kit expects. Windows of all sounds go through the network together, in chunks of
``batch_size`` (default: the embedding model's measured rule, see ``EmbeddingModel``). An empty
batch gives empty outputs.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
from torch import nn

from vcmr.audio.io import resample
from vcmr.errors import VcmrError
from vcmr.inference import float_samples, segment_audio
from vcmr.io.load import load_model as load_embedding_model

DEFAULT_HOP_MS = 50.0
HEAR_RATES = (16000, 22050, 32000, 44100, 48000)  # the rates hearvalidator 2021.0.6 accepts


def hear_rate(model_rate: int) -> int:
    """The smallest HEAR rate >= ``model_rate`` (48000 when the model runs faster)."""
    return next((r for r in HEAR_RATES if r >= model_rate), HEAR_RATES[-1])


class HearModel(nn.Module):
    """Wraps an ``EmbeddingModel`` with the attributes the HEAR API requires."""

    def __init__(self, model, timestamp_hop_ms: float = DEFAULT_HOP_MS, batch_size: int | None = None):
        super().__init__()
        if isinstance(timestamp_hop_ms, bool) or not timestamp_hop_ms > 0:
            raise VcmrError(f"timestamp_hop_ms must be positive, got {timestamp_hop_ms}")
        if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool)
                                       or batch_size < 1):
            raise VcmrError(f"batch_size must be a positive integer or None (automatic), got {batch_size!r}")
        self.model = model
        if batch_size is not None:
            model.batch_size = batch_size
        self.sample_rate = hear_rate(int(model.sample_rate))
        self.scene_embedding_size = int(model.embedding_size)
        self.timestamp_embedding_size = int(model.embedding_size)
        self.timestamp_hop_ms = float(timestamp_hop_ms)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return get_scene_embeddings(audio, self)


def load_model(model_file_path: str = "", timestamp_hop_ms: float = DEFAULT_HOP_MS,
               device=None, batch_size: int | None = None) -> HearModel:
    if not model_file_path:
        raise VcmrError("vcmr.hear.load_model needs model_file_path: a .ckpt from vcmr training, "
                        "a .safetensors file from `vcmr export`, or hf://ORG/NAME")
    return HearModel(load_embedding_model(model_file_path, device), timestamp_hop_ms, batch_size)


def _check_audio(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.dim() != 2:
        raise VcmrError(f"HEAR audio must be a tensor (n_sounds, n_samples) at "
                        f"{model.sample_rate} Hz, got {getattr(audio, 'shape', type(audio))}")
    audio = torch.from_numpy(float_samples(audio, "HEAR audio"))  # int16/int32/uint8 PCM scaled
    if not torch.isfinite(audio).all():
        raise VcmrError("HEAR audio contains NaN or infinite samples")
    return audio


def _at_model_rate(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """(n_sounds, n) at the HEAR rate -> (n_sounds, m) at the model's rate, one soxr call."""
    rate = model.model.sample_rate
    if rate == model.sample_rate or audio.shape[0] == 0 or audio.shape[1] == 0:
        return audio
    return torch.from_numpy(np.ascontiguousarray(resample(audio.numpy().T, model.sample_rate, rate).T))


def timestamps_ms(n_samples: int, sample_rate: int, hop_ms: float) -> np.ndarray:
    """``k * hop_ms`` for every k with ``k * hop <= n_samples / sample_rate`` (exact count)."""
    hop = Fraction(hop_ms)  # exact value of the float
    n_frames = int(Fraction(n_samples * 1000, sample_rate) // hop) + 1
    return np.arange(n_frames, dtype=np.float64) * float(hop)


def _embed_centres(x: torch.Tensor, centres: np.ndarray, m) -> torch.Tensor:
    """(n_sounds, m) audio, window centres (samples) -> (n_sounds, n_centres, D) embeddings.

    Windows are cut from a strided view, a chunk at a time, so 20 minutes at a 50 ms hop never
    holds all of its (overlapping) windows in memory at once.
    """
    seg, n_sounds, n_c = m.segment_samples, x.shape[0], len(centres)
    lead = seg // 2
    tail = max(0, int(centres.max()) - lead + seg - x.shape[1]) if n_c else 0
    view = torch.nn.functional.pad(x, (lead, tail)).unfold(1, seg, 1)
    starts = torch.from_numpy(centres - seg // 2 + lead)
    flat = torch.arange(n_sounds * n_c)
    chunk = max(64, m._batch() * 4)
    out = [m.embed_segments(view[idx // n_c, starts[idx % n_c]]) for idx in flat.split(chunk)]
    emb = torch.cat(out) if out else torch.zeros(0, m.embedding_size, device=m.device)
    return emb.reshape(n_sounds, n_c, m.embedding_size)


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    audio = _check_audio(audio, model)
    m = model.model
    ts = timestamps_ms(audio.shape[1], model.sample_rate, model.timestamp_hop_ms)
    centres = np.round(ts * m.sample_rate / 1000.0).astype(np.int64)
    emb = _embed_centres(_at_model_rate(audio, model), centres, m)
    stamps = torch.from_numpy(ts.astype(np.float32)).to(emb.device)
    return emb, stamps.unsqueeze(0).expand(audio.shape[0], -1).contiguous()


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """Mean of each sound's non-overlapping segments; all sounds' segments batched together."""
    audio = _check_audio(audio, model)
    m = model.model
    if audio.shape[0] == 0:
        return torch.zeros(0, model.scene_embedding_size, device=m.device)
    x = _at_model_rate(audio, model).numpy()
    windows = [segment_audio(s, m.segment_samples)[0] for s in x]
    emb = m.embed_segments(np.concatenate(windows))
    return emb.reshape(len(windows), -1, m.embedding_size).mean(dim=1)
