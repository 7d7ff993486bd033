"""Models and audio shared by the embedding tests (test_api, test_export, test_hear, commands).

All are the tests' tiny SampleCNN (``conftest.TINY_ENCODER``):

* ``tiny_model`` / ``tiny_checkpoint``: any stage with seeded random weights, built without
  training (no Lightning), as an ``EmbeddingModel`` or as a checkpoint file.
* Stage 1: a real tiny training run (``train_music``, 1 step) on synthetic music.
* Stages 2 and 3: the real LightningModules (``VideoModule``, ``TaggingModule``) with
  seeded random weights and non-trivial BatchNorm statistics, saved in the checkpoint layout
  Lightning writes (``hyper_parameters`` + ``state_dict``).
Each is built once per test session (memoised) under a pytest temporary folder.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

from conftest import TINY_OVERRIDES, tiny_overrides
from vcmr.config import config_to_dict, load_config
from vcmr.inference import EmbeddingModel
from vcmr.io.checkpoint import checkpoint_hparams
from vcmr.models.stages import build

SR = 16000
TAGS = ["guitar", "piano", "drums", "fast"]
_CACHE: dict[str, Path] = {}


def tiny_config(stage: str = "music", **changes) -> dict:
    """The stage's config with the tiny encoder (and ``changes``), as stored in model files."""
    return config_to_dict(load_config(stage, None, tiny_overrides(**changes)))


def tiny_model(stage: str = "tagging", sample_rate: int = SR, seed: int = 0,
               tags=("a", "b")) -> EmbeddingModel:
    """The tiny network of ``stage`` at ``sample_rate`` with seeded random weights."""
    torch.manual_seed(seed)
    cfg = tiny_config(stage, sample_rate=sample_rate)
    tags = list(tags) if stage == "tagging" else None
    state = build(stage, cfg, tags).state_dict()
    return EmbeddingModel(stage, cfg, state, tags, f"tiny {stage} model, {sample_rate} Hz")


def tiny_checkpoint(path: Path, stage: str = "music", seed: int = 0) -> Path:
    """``tiny_model(stage)`` saved in the checkpoint layout training writes (``net.*`` keys)."""
    model = tiny_model(stage, seed=seed)
    state = {f"net.{k}": v for k, v in model.net.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": checkpoint_hparams(stage, model.config, model.tags)}, path)
    return path


def music(duration: float, sample_rate: int = SR, seed: int = 0, tags=("piano",)) -> np.ndarray:
    from vcmr.demo.synth.music import render_music
    return render_music(list(tags), duration, sample_rate, seed).audio.astype(np.float32)


def stage1_checkpoint(root: Path) -> Path:
    if "music" not in _CACHE:
        from vcmr.audio.io import write_wav
        from vcmr.train.music import train_music
        audio = root / "stage1_audio"
        for i, tags in enumerate([("piano",), ("guitar",), ("drums", "fast"), ("piano", "slow"), ("guitar",), ("drums",)]):
            write_wav(audio / f"song{i}.wav", music(1.0, SR, seed=i, tags=tags), SR)
        cfg = load_config("music", None, TINY_OVERRIDES + [
            "--dataset_dir", str(audio), "--batch_size", "4", "--max_steps", "1", "--m_epochs", "1",
            "--workers", "0", "--log_dir", str(root / "runs"), "--progress_bar", "false",
            "--accelerator", "cpu", "--devices", "1"])
        _CACHE["music"] = Path(train_music(cfg)["last"])
    return _CACHE["music"]


def _randomise_batchnorm(module: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def _save(module, hparams: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"hyper_parameters": hparams, "state_dict": module.state_dict()}, path)
    return path


def stage2_module(feature_dim: int = 8):
    from vcmr.train.video import VideoModule
    torch.manual_seed(2)
    cfg = load_config("video", None, TINY_OVERRIDES + ["--feature_dim", str(feature_dim), "--from_scratch", "true"])
    module = VideoModule(cfg, load_audio_encoder=False)
    _randomise_batchnorm(module, 2)
    return module.eval()


def stage2_checkpoint(root: Path) -> Path:
    if "video" not in _CACHE:
        module = stage2_module()
        _CACHE["video"] = _save(module, dict(module.hparams), root / "vid.ckpt")
    return _CACHE["video"]


def stage3_module():
    from vcmr.train.tagging import TaggingModule
    torch.manual_seed(3)
    module = TaggingModule(load_config("tagging", None, TINY_OVERRIDES), TAGS)
    _randomise_batchnorm(module, 3)
    return module.eval()


def stage3_checkpoint(root: Path) -> Path:
    if "tagging" not in _CACHE:
        module = stage3_module()
        _CACHE["tagging"] = _save(module, dict(module.hparams), root / "sup.ckpt")
    return _CACHE["tagging"]


def patch_wav_rate(path, rate: int) -> None:
    """Rewrite the sample rate (and byte rate) in a WAV file's fmt chunk, as a lying header."""
    data = bytearray(path.read_bytes())
    fmt = data.index(b"fmt ")
    block_align = struct.unpack_from("<H", data, fmt + 20)[0]
    struct.pack_into("<II", data, fmt + 12, rate, rate * block_align)
    path.write_bytes(bytes(data))

