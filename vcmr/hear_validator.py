"""The checks of the official HEAR validator (hearvalidator 2021.0.6, ``ValidateModel``), run
on a vcmr model through ``vcmr.hear``: what ``vcmr export --hub_dir --hear_check`` reports in
the model card.

hearvalidator itself needs TensorFlow and Python <= 3.9 wheels, so vcmr repeats its checks: the
module is a torch Module, its sample rate one HEAR accepts, its embedding sizes ints; timestamp
embeddings of white-noise batches (2 sounds of 1.07 s, 1.98 s and 4.0 s) are float32 with
consistent shapes, regularly spaced (<= 1 ms deviation), end within two hops of the end of the
sound and not after it; scene embeddings of 4 x 2.74 s are float32 (4, scene_embedding_size).
The validator's warnings (a hop over 50 ms, timestamps that start late or end early) are
returned, not raised.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vcmr import hear

VALIDATOR = "hearvalidator 2021.0.6"
ACCEPTABLE_RATES = (16000, 22050, 32000, 44100, 48000)


class HearCheckError(AssertionError):
    """A check the HEAR validator fails on."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise HearCheckError(message)


def _check_timestamps(model, length: float, warned: list[str]) -> None:
    audio = torch.rand((2, int(length * model.sample_rate))) * 2 - 1
    emb, ts = hear.get_timestamp_embeddings(audio, model)
    _require(emb.dtype == torch.float32, f"timestamp embeddings are {emb.dtype}, not float32")
    emb, ts = emb.detach().cpu().numpy(), ts.detach().cpu().numpy()
    _require(emb.ndim == 3 and ts.ndim == 2 and emb.shape[0] == 2, f"shapes {emb.shape} and {ts.shape}")
    _require(emb.shape[:2] == ts.shape and emb.shape[2] == model.timestamp_embedding_size,
             f"embeddings {emb.shape} do not match timestamps {ts.shape}")
    _require(ts.shape[1] > 1, f"only {ts.shape[1]} timestamp for {length} s")
    diff = np.diff(ts)
    avg, ms = diff.mean(), 1000 * length
    if diff.max() > 50.0:
        warned.append(f"timestamp interval {diff.max():g} ms > 50 ms")
    _require(np.abs(diff - avg).max() <= 1, "timestamps not at regular intervals")
    lo, hi = ts.min(), ts.max()
    if lo > avg:
        warned.append(f"timestamps begin at {lo:g} ms")
    _require(hi >= ms - 2 * avg, f"timestamps end at {hi:g} ms of {ms:g} ms")
    if hi < ms - avg or hi < ms - 50:
        warned.append(f"timestamps end at {hi:g} ms of {ms:g} ms")
    _require(hi <= ms, f"timestamps end at {hi:g} ms, after the audio ({ms:g} ms)")


def validate(model) -> list[str]:
    """The validator's checks on a HEAR module (``vcmr.hear.HearModel``); raises
    HearCheckError on its errors and returns its warnings."""
    warned: list[str] = []
    _require(isinstance(model, torch.nn.Module), "the model is not a torch.nn.Module")
    _require(model.sample_rate in ACCEPTABLE_RATES, f"input sample rate {model.sample_rate} is not a HEAR rate")
    _require(isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int),
             "embedding sizes are not ints")
    for length in (1.07, 1.98, 4.0):
        _check_timestamps(model, length, warned)
    scene = hear.get_scene_embeddings(torch.rand((4, int(2.74 * model.sample_rate))) * 2 - 1, model)
    _require(scene.dtype == torch.float32 and tuple(scene.shape) == (4, model.scene_embedding_size),
             f"scene embeddings {scene.dtype} {tuple(scene.shape)}")
    return warned


def hear_report(embedding_model, timestamp_hop_ms: float = hear.DEFAULT_HOP_MS) -> dict[str, Any]:
    """Run ``validate`` on ``embedding_model`` (an ``EmbeddingModel``) wrapped by ``vcmr.hear``:
    ``{"validator", "passed", "sample_rate" (declared), "model_sample_rate",
    "timestamp_hop_ms", "embedding_size", "warnings", ["error"]}``."""
    torch.manual_seed(0)  # the validator's noise: the same every run
    model = hear.HearModel(embedding_model, timestamp_hop_ms=timestamp_hop_ms)
    out: dict[str, Any] = {"validator": VALIDATOR, "sample_rate": model.sample_rate,
                           "model_sample_rate": embedding_model.sample_rate,
                           "timestamp_hop_ms": float(timestamp_hop_ms),
                           "embedding_size": model.scene_embedding_size}
    try:
        out["warnings"], out["passed"] = validate(model), True
    except HearCheckError as e:
        out["warnings"], out["passed"], out["error"] = [], False, str(e)
    return out
