"""Inference: embed audio with one trained stage network (core install only).

    import vcmr
    model = vcmr.load_model("runs/.../last.ckpt")     # or "model.safetensors", or hf://ORG/NAME
    emb = model.embed(audio, sample_rate=44100)        # per-segment embeddings + timestamps
    emb.embeddings.shape, emb.starts, emb.ends         # (n_segments, 512), seconds, seconds
    song = model.embed_song(audio, 44100)              # (512,) mean over segments

``EmbeddingModel`` wraps the stage network (``vcmr.models.stages``) built from a stored
``{stage, config, state_dict, tags}``; ``vcmr.io.load.load_model`` makes one from any model
file.

Segmentation rule (also in docs/using-models.md): the audio is mixed to mono, resampled to the
model's ``sample_rate`` (soxr, HQ) and cut into windows of ``segment_samples``; window k starts
at ``round(k * hop)`` with the fractional hop ``segment_samples * (1 - overlap)``, the rule of
song-level evaluation (``vcmr.metrics.songs.segment_starts``). Windows are added until one
reaches the end of the audio; the last window, when partial, is zero-padded at the end (the
same rule as stage-1 training for short files). Audio shorter than one window gives one
zero-padded window. With ``pad_last=False`` a partial last window is dropped instead (unless it
is the only one), as evaluation does. ``ends`` are clipped to the audio's duration, so
``ends - starts`` is the real audio covered.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, NamedTuple

import numpy as np
import torch
from torch import nn

from vcmr.audio.stream import AudioStream, array_blocks, resample_blocks
from vcmr.audio.windows import WindowStream
from vcmr.config import ConfigError, config_to_dict
from vcmr.config.authors import notice
from vcmr.errors import CheckpointError, VcmrError, short_repr
from vcmr.metrics.songs import segment_starts
from vcmr.models.stages import NETWORKS, build, build_loaded, stage_config

__all__ = ["Embeddings", "EmbeddingModel", "embed_file", "float_samples", "segment_audio",
           "to_mono_waveform"]

SPACES = ("encoder", "joint")
MAX_CHANNELS = 8  # a 2-D input with a side this small is read as channels
# integer PCM -> float in [-1, 1], as soundfile (libsndfile) reads a file: (x - offset) / scale
PCM_SCALE = {np.dtype(np.int16): (0, 32768.0), np.dtype(np.int32): (0, 2.0 ** 31),
             np.dtype(np.uint8): (128, 128.0)}


class Embeddings(NamedTuple):
    """Per-segment embeddings: ``embeddings`` (n, D) float32, ``starts``/``ends`` (n,) seconds."""
    embeddings: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


# ------------------------------------------------------------------------------ audio input
def float_samples(audio: Any, what: str = "audio") -> np.ndarray:
    """Float32 samples of an array or tensor, any shape. Floats (float16 and bfloat16
    included) are converted exactly; int16, int32 and uint8 PCM (``scipy.io.wavfile.read``)
    are scaled to [-1, 1] as the file reader scales them; any other type is a VcmrError."""
    if isinstance(audio, torch.Tensor):
        audio = audio.detach().cpu()
        audio = (audio.to(torch.float32) if audio.is_floating_point() else audio).numpy()
    try:
        x = np.asarray(audio)
    except (ValueError, TypeError) as e:  # ragged lists and the like
        raise VcmrError(f"{what} is not an array of samples ({e})") from None
    if x.dtype.kind == "f":
        return x.astype(np.float32, copy=False)
    if x.dtype in PCM_SCALE:
        offset, scale = PCM_SCALE[x.dtype]
        return (x.astype(np.float32) - np.float32(offset)) / np.float32(scale)
    raise VcmrError(f"{what} has samples of type {x.dtype}: give floats in [-1, 1] or integer "
                    f"PCM (int16, int32 or uint8, as scipy.io.wavfile.read returns it); convert "
                    f"other types yourself, e.g. x.astype(np.float32) / full_scale")


def to_mono_waveform(audio: Any) -> np.ndarray:
    """Mono float32 (samples,) from (samples,), (samples, channels) or (channels, samples).

    A 2-D input is read as channels-first when its first side has at most 8 entries and is the
    shorter side, else as channels-last (soundfile's layout); channels are averaged.
    """
    x = float_samples(audio)
    if x.ndim == 1:
        return x
    if x.ndim == 2:
        if x.shape[0] <= MAX_CHANNELS and x.shape[0] < x.shape[1]:
            return x.mean(axis=0)
        if x.shape[1] <= MAX_CHANNELS:
            return x.mean(axis=1)
    raise VcmrError(f"audio of shape {x.shape} is not a waveform: give mono (samples,) or "
                    f"multi-channel (samples, channels) / (channels, samples) audio with at most "
                    f"{MAX_CHANNELS} channels (embed one sound at a time, or use vcmr.hear for batches)")


def segment_audio(x: np.ndarray, segment: int, overlap: float = 0.0,
                  pad_last: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Cut mono ``x`` into (n, segment) windows by the rule above; returns (windows, starts)."""
    if not 0.0 <= overlap < 1.0:
        raise VcmrError(f"overlap must be in [0, 1) (a fraction of the segment), got {overlap}")
    starts = np.asarray(segment_starts(len(x), segment, overlap, pad_last), dtype=np.int64)
    padded = np.zeros(int(starts[-1]) + segment, dtype=np.float32)
    padded[: min(len(x), len(padded))] = x[: len(padded)]
    windows = np.lib.stride_tricks.sliding_window_view(padded, segment)[starts]
    return np.ascontiguousarray(windows), starts


def _audio_tensor(x: Any) -> torch.Tensor:
    """Windows of audio as float32 (a float tensor stays on its device; PCM is scaled)."""
    if isinstance(x, torch.Tensor) and x.is_floating_point():
        return x.detach().to(torch.float32)
    return torch.from_numpy(float_samples(x, "audio segments"))


def _as_float_tensor(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float32)
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


def _has_projector(stage: str, state_dict: dict, source: str) -> bool:
    """Whether the network keeps its projector. A stage-1 file with no ``projector.*`` weights at all
    (CLMR's encoder-only ``clmr_checkpoint_10000.pt``, all CLMR's ``load_encoder_checkpoint``
    reads) loads as an encoder-only model: embeddings need only the encoder, and the projector
    is removed rather than left with random weights."""
    if stage != "music" or any(k.startswith("projector.") for k in state_dict):
        return True
    notice(f"{source} holds only the encoder (no projector.* weights): loaded as an encoder-only "
           f"model, which gives encoder embeddings (space='encoder') as CLMR's "
           f"load_encoder_checkpoint does; it cannot resume contrastive training")
    return False


# ------------------------------------------------------------------------------ the model
class EmbeddingModel(nn.Module):
    """One trained stage network (``vcmr.models.stages``) for inference, in eval mode.

    Attributes: ``net`` (the stage network), ``sample_rate``, ``segment_samples`` (input
    length), ``embedding_size`` (encoder output), ``joint_size`` (stage 2: size of the
    audio/video joint space, else None), ``stage`` ("music", "video", "tagging"), ``config`` (the stored
    stage config), ``tags`` (stage 3), ``layout`` (the foreign layout a converted file came
    from, else None), ``has_projector`` (False for an encoder-only stage-1 file),
    ``batch_size`` (segments per forward pass; change it freely, results do
    not depend on it).
    """

    def __init__(self, stage: str, config: Any, state_dict: dict[str, torch.Tensor],
                 tags: list[str] | None = None, source: str = "model", layout: str | None = None):
        super().__init__()
        if stage not in NETWORKS:
            raise CheckpointError(f"{source}: unknown stage {short_repr(stage)} (expected music, video or tagging)")
        if stage == "tagging" and not tags:
            raise CheckpointError(f"{source}: a stage-3 (tagging) model without its tag names")
        try:
            cfg = stage_config(stage, config)
        except ConfigError as e:
            raise CheckpointError(f"{source}: its stored architecture config is invalid: {e}") from None
        self.has_projector = _has_projector(stage, state_dict, source)

        def make() -> nn.Module:
            net = build(stage, cfg, tags if stage == "tagging" else None)
            if not self.has_projector:
                net.projector = None  # an encoder-only stage-1 file: no random projector kept
            return net
        self.net = build_loaded(make, state_dict, source)
        self.config = dict(config) if isinstance(config, dict) else config_to_dict(config)
        self.stage, self.source, self.layout = stage, source, layout
        self.tags = list(tags) if stage == "tagging" else None
        enc = self.net.encoder.cfg
        self.sample_rate, self.segment_samples, self.embedding_size = (
            enc.sample_rate, enc.audio_length, enc.output_size)
        self.batch_size: int | None = None  # None: 32 (benchmarks/README.md, "Embedding")
        self.joint_size = self.net.projector[-1].out_features if stage == "video" else None
        self.eval()

    # --------------------------------------------------------------- properties and export
    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def segment_seconds(self) -> float:
        return self.segment_samples / self.sample_rate

    def train(self, mode: bool = True):
        return super().train(False)  # inference only: BatchNorm always uses running statistics

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights an exported file holds: the stage network's state dict."""
        return {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}

    # --------------------------------------------------------------- audio
    def _batch(self) -> int:
        """Segments per forward pass: ``batch_size`` if set, else 32 on every device. Rule: the
        CPU default is the size closest to the best in BOTH measured workloads (one long file,
        and HEAR batches of centred windows); 32 was the best in both (benchmarks/README.md),
        at about 1 GB of extra peak memory for the paper model. Results do not depend on it."""
        if self.batch_size:
            return max(1, int(self.batch_size))
        return 32

    @torch.no_grad()
    def embed_segments(self, segments: torch.Tensor | np.ndarray, space: str = "encoder") -> torch.Tensor:
        """(n, segment_samples) waveforms at ``sample_rate`` -> (n, D) on the model's device."""
        head = self._space_head(space)
        x = _audio_tensor(segments)
        if x.dim() != 2 or x.shape[1] != self.segment_samples:
            raise VcmrError(f"embed_segments expects (n, {self.segment_samples}) waveforms, got "
                            f"{tuple(x.shape)}; use embed() for audio of any length")
        out = [head(self.net.encoder(chunk.to(self.device))) for chunk in x.split(self._batch())]
        return torch.cat(out) if out else torch.zeros(0, self.space_size(space), device=self.device)

    def embed(self, audio: Any, sample_rate: int, overlap: float = 0.0, space: str = "encoder",
              pad_last: bool = True) -> Embeddings:
        """Per-segment embeddings of one sound (see the module docstring for the rule).

        ``audio``: NumPy array or tensor, mono or multi-channel, at ``sample_rate`` Hz.
        ``space``: "encoder" (SampleCNN output, ``embedding_size``) or, for stage-2 models,
        "joint" (audio projector output, comparable with ``embed_video_features``).
        Resampling and windows go a block and a batch at a time (``embed_blocks``): the memory
        used beyond the input is one batch of windows and the output, whatever the duration.
        """
        x = self._prepare(audio, sample_rate)
        blocks = resample_blocks(array_blocks(x), int(sample_rate), self.sample_rate)
        return self.embed_blocks(blocks, overlap, space, pad_last)

    def embed_blocks(self, blocks: Iterable[np.ndarray], overlap: float = 0.0, space: str = "encoder",
                     pad_last: bool = True) -> Embeddings:
        """``embed`` of mono float32 audio at the model's rate given as consecutive blocks (a
        ``vcmr.audio.stream.AudioStream``, say): windows are cut as the blocks arrive."""
        if not 0.0 <= overlap < 1.0:
            raise VcmrError(f"overlap must be in [0, 1) (a fraction of the segment), got {overlap}")
        self._space_head(space)
        windows = WindowStream(blocks, self.segment_samples, self._batch(), overlap=overlap,
                               pad_last=pad_last)
        starts, embs = [], []
        for s, w in windows:
            starts.append(s)
            embs.append(self.embed_segments(w, space).cpu().numpy())
        if windows.n_samples == 0:
            raise VcmrError("the audio holds no samples")
        starts = np.concatenate(starts)
        starts_s = starts / self.sample_rate
        ends_s = np.minimum(starts + self.segment_samples, windows.n_samples) / self.sample_rate
        return Embeddings(np.concatenate(embs), starts_s.astype(np.float64), ends_s.astype(np.float64))

    def embed_song(self, audio: Any, sample_rate: int, overlap: float = 0.0,
                   space: str = "encoder") -> np.ndarray:
        """Song-level embedding: the mean of the per-segment embeddings, shape (D,)."""
        return self.embed(audio, sample_rate, overlap, space).embeddings.mean(axis=0)

    def _prepare(self, audio: Any, sample_rate: int) -> np.ndarray:
        """Mono float32 samples at ``sample_rate``, checked (not yet resampled)."""
        if (not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool)
                or sample_rate <= 0):
            raise VcmrError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        x = to_mono_waveform(audio)
        if x.size == 0:
            raise VcmrError("the audio holds no samples")
        if not all(np.isfinite(b).all() for b in array_blocks(x)):  # a block at a time
            raise VcmrError("the audio contains NaN or infinite samples")
        return x

    def _space_head(self, space: str):
        if space not in SPACES:
            raise VcmrError(f"unknown embedding space {space!r}; choose one of {', '.join(SPACES)}")
        if space == "joint":
            if self.stage != "video":
                raise VcmrError(f"space='joint' needs a stage-2 (video-conditioned) model; "
                                f"{self.source} is stage {self.stage!r}: use space='encoder'")
            return self.net.projector
        return nn.Identity()

    def space_size(self, space: str = "encoder") -> int:
        """Embedding size in ``space``; raises VcmrError when this model has no such space."""
        self._space_head(space)
        return self.joint_size if space == "joint" else self.embedding_size

    # --------------------------------------------------------------- video and tags
    @torch.no_grad()
    def embed_video_features(self, features: Any) -> np.ndarray:
        """Stage 2: per-second frame features -> joint-space video embedding.

        ``features``: (seconds, feature_dim) for one clip -> (joint_size,), or
        (batch, seconds, feature_dim) -> (batch, joint_size). ``seconds`` must equal
        ``video_seconds`` (the audio segment length rounded to whole seconds).
        """
        if self.stage != "video":
            raise VcmrError(f"embed_video_features needs a stage-2 (video-conditioned) model; "
                            f"{self.source} is stage {self.stage!r}")
        f = _as_float_tensor(features)
        single = f.dim() == 2
        f = f.unsqueeze(0) if single else f
        ve = self.net.video_encoder
        if f.dim() != 3 or tuple(f.shape[1:]) != (ve.n_seconds, ve.feature_dim):
            raise VcmrError(f"video features of shape {tuple(f.shape) if not single else tuple(f.shape[1:])} "
                            f"do not fit this model: give ({ve.n_seconds}, {ve.feature_dim}) per clip "
                            f"(seconds, frame-feature size from `vcmr prepare` with the same frame encoder)")
        out = torch.cat([self.net.embed_video(c.to(self.device))
                         for c in f.split(self._batch())]).cpu().numpy()
        return out[0] if single else out

    @property
    def video_seconds(self) -> int | None:
        return self.net.video_encoder.n_seconds if self.stage == "video" else None

    @torch.no_grad()
    def predict_tags(self, audio: Any, sample_rate: int, overlap: float = 0.0) -> dict[str, float]:
        """Stage 3: song-level tag probabilities (mean over segments of the sigmoid outputs)."""
        if self.stage != "tagging":
            raise VcmrError(f"predict_tags needs a stage-3 (tagging) model; {self.source} is "
                            f"stage {self.stage!r}")
        emb = torch.as_tensor(self.embed(audio, sample_rate, overlap).embeddings, device=self.device)
        probs = torch.sigmoid(self.net.head(emb)).mean(0).cpu().numpy()
        return dict(zip(self.tags, probs.astype(float).tolist()))


def embed_file(path: str | Path, model: EmbeddingModel, overlap: float = 0.0,
               song_level: bool = False, space: str = "encoder") -> Embeddings | np.ndarray:
    """Embeddings of an audio file (or the audio track of a video, with PyAV installed).

    Returns ``Embeddings`` (per segment) or, with ``song_level=True``, the (D,) mean. The file
    is decoded, mixed and resampled a block at a time (``vcmr.audio.stream.AudioStream``), so
    an hour of audio takes the memory of a few seconds plus the output.
    """
    emb = model.embed_blocks(AudioStream(path, model.sample_rate), overlap, space)
    return emb.embeddings.mean(axis=0) if song_level else emb
