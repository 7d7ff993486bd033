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

Memory: each sound is resampled a block at a time (soxr's streaming resampler) and its windows
are cut from those blocks a batch at a time (``vcmr.audio.windows.WindowStream``), so beyond the
input and the output only one block and one batch of windows are held, whatever the duration
(20 minutes with timestamps at 50 ms: benchmarks/README.md, "Long audio").
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterator

import numpy as np
import torch
from torch import nn

from vcmr.audio.stream import array_blocks, resample_blocks
from vcmr.audio.windows import WindowStream
from vcmr.errors import VcmrError
from vcmr.inference import float_samples
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


def _sound_blocks(sound: np.ndarray, model: HearModel):
    """One sound at the HEAR rate -> blocks at the model's rate (soxr streaming, HQ)."""
    return resample_blocks(array_blocks(sound), model.sample_rate, model.model.sample_rate)


def _embed_windows(m, per_sound) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """``per_sound``: (sound index, windows) batches in order -> (sound index per row,
    embeddings) with the rows of several sounds sharing a forward pass of ``m._batch()``."""
    rows, idx, n = [], [], 0
    for i, w in per_sound:
        rows.append(w)
        idx.append(np.full(len(w), i))
        n += len(w)
        if n >= m._batch():
            yield np.concatenate(idx), m.embed_segments(np.concatenate(rows))
            rows, idx, n = [], [], 0
    if rows:
        yield np.concatenate(idx), m.embed_segments(np.concatenate(rows))


def timestamps_ms(n_samples: int, sample_rate: int, hop_ms: float) -> np.ndarray:
    """``k * hop_ms`` for every k with ``k * hop <= n_samples / sample_rate`` (exact count)."""
    hop = Fraction(hop_ms)  # exact value of the float
    n_frames = int(Fraction(n_samples * 1000, sample_rate) // hop) + 1
    return np.arange(n_frames, dtype=np.float64) * float(hop)


def _embed_centres(x: np.ndarray, centres: np.ndarray, model: HearModel) -> torch.Tensor:
    """(n_sounds, n) audio at the HEAR rate, window centres (samples at the model's rate) ->
    (n_sounds, n_centres, D) embeddings. Each sound is resampled and cut a block and a batch at
    a time, so 20 minutes at a 50 ms hop never holds its (overlapping) windows at once."""
    m = model.model
    starts = centres - m.segment_samples // 2

    def per_sound():
        for i, sound in enumerate(x):
            ws = WindowStream(_sound_blocks(sound, model), m.segment_samples, m._batch(), starts=starts)
            for _, w in ws:
                yield i, w
    out = torch.zeros(len(x), len(centres), m.embedding_size, device=m.device)
    filled = np.zeros(len(x), np.int64)
    for idx, emb in _embed_windows(m, per_sound()):
        for i in np.unique(idx):
            rows = emb[torch.from_numpy(idx == i).to(emb.device)]
            out[i, filled[i]:filled[i] + len(rows)] = rows
            filled[i] += len(rows)
    return out


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    audio = _check_audio(audio, model)
    m = model.model
    ts = timestamps_ms(audio.shape[1], model.sample_rate, model.timestamp_hop_ms)
    centres = np.round(ts * m.sample_rate / 1000.0).astype(np.int64)
    emb = _embed_centres(audio.numpy(), centres, model)
    stamps = torch.from_numpy(ts.astype(np.float32)).to(emb.device)
    return emb, stamps.unsqueeze(0).expand(audio.shape[0], -1).contiguous()


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """Mean of each sound's non-overlapping segments (the ``embed_song`` rule); windows of all
    sounds share forward passes, cut a block and a batch at a time."""
    audio = _check_audio(audio, model)
    m = model.model

    def per_sound():
        for i, sound in enumerate(audio.numpy()):
            for _, w in WindowStream(_sound_blocks(sound, model), m.segment_samples, m._batch()):
                yield i, w
    sums = torch.zeros(audio.shape[0], m.embedding_size, device=m.device)
    counts = torch.zeros(audio.shape[0], device=m.device)
    for idx, emb in _embed_windows(m, per_sound()):
        index = torch.from_numpy(idx).to(m.device)
        sums.index_add_(0, index, emb)
        counts.index_add_(0, index, torch.ones(len(idx), device=m.device))
    return sums / counts.clamp(min=1).unsqueeze(1)
