"""Embedding API: load any vcmr model and turn audio into embeddings (core install only).

    import vcmr
    model = vcmr.load_model("runs/.../last.ckpt")     # or "model.safetensors", or a registry name
    emb = model.embed(audio, sample_rate=44100)        # per-segment embeddings + timestamps
    emb.embeddings.shape, emb.starts, emb.ends         # (n_segments, 512), seconds, seconds
    song = model.embed_song(audio, 44100)              # (512,) mean over segments

Segmentation rule (also in the README): the audio is mixed to mono, resampled to the model's
``sample_rate`` (soxr, HQ) and cut into windows of ``segment_samples`` starting at 0 with hop
``round(segment_samples * (1 - overlap))``. Windows are added until one reaches the end of the
audio; the last window, when partial, is zero-padded at the end (the same rule as stage-1
training for short files). Audio shorter than one window gives one zero-padded window. With
``pad_last=False`` a partial last window is dropped instead (unless it is the only one).
``ends`` are clipped to the audio's duration, so ``ends - starts`` is the real audio covered.

No Lightning, PyAV or transformers are imported here; checkpoints are read with
``torch.load(weights_only=True)`` and exported files with safetensors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import vcmr.pretrained as pretrained
from vcmr.audio.io import read_audio
from vcmr.checkpoint import CheckpointError
from vcmr.export import load_local_file
from vcmr.inference import (MAX_CHANNELS, SPACES, EmbeddingModel, Embeddings,  # noqa: F401 (re-exported)
                        default_device, segment_audio, to_mono_waveform)

__all__ = ["Embeddings", "EmbeddingModel", "load_model", "embed_file", "segment_audio",
           "to_mono_waveform"]


def load_model(name_or_path: str | Path, device: str | torch.device | None = None) -> EmbeddingModel:
    """An EmbeddingModel from a vcmr checkpoint (.ckpt, any stage), an exported .safetensors
    file, a folder written by ``vcmr export --hub-dir`` (its model.safetensors), a Hugging Face
    Hub model ``hf://ORG/NAME[@REVISION]``, or the name of a registered pretrained model (see
    ``vcmr.available_models()``)."""
    if pretrained.is_hub(name_or_path):
        return pretrained.load_hub(name_or_path).to(default_device(device))
    path = Path(name_or_path)
    if path.is_dir() and (path / pretrained.HUB_FILE).is_file():
        path = path / pretrained.HUB_FILE
    if not path.exists():
        if pretrained.looks_like_name(str(name_or_path)):
            return pretrained.load_pretrained(str(name_or_path), device)
        raise CheckpointError(f"model {str(name_or_path)!r} not found: give a .ckpt written by vcmr "
                              f"training, a .safetensors file from `vcmr export`, hf://ORG/NAME, or a "
                              f"pretrained model name ({pretrained.describe_available()})")
    if path.is_dir():
        raise CheckpointError(f"{str(path)!r} is a folder without {pretrained.HUB_FILE}: give a "
                              f".ckpt or .safetensors file, or a folder from `vcmr export --hub-dir`")
    return load_local_file(path).to(default_device(device))


def embed_file(path: str | Path, model: EmbeddingModel, overlap: float = 0.0,
               song_level: bool = False, space: str = "encoder") -> Embeddings | np.ndarray:
    """Embeddings of an audio file (or the audio track of a video, with PyAV installed).

    Returns ``Embeddings`` (per segment) or, with ``song_level=True``, the (D,) mean.
    """
    x, sr = read_audio(path, sample_rate=model.sample_rate)
    if song_level:
        return model.embed_song(x, sr, overlap, space)
    return model.embed(x, sr, overlap, space)
