"""Regenerate the reference files that tests/test_reference.py pins embeddings with.

    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/data/reference/regenerate.py          # all three
    OMP_NUM_THREADS=1 PYTHONPATH=. python tests/data/reference/regenerate.py --expected-only

Writes, next to this script:
* ``tiny.safetensors``: a tiny stage-3 (tagging) model, seeded random weights and BatchNorm
  statistics, exported with ``vcmr.io.model_file.save_model_file`` (so it records the versions);
* ``audio.wav``: 1 s of deterministic synthetic music at 22050 Hz, 16-bit PCM (the model runs
  at 16 kHz, so the resampler is part of what is pinned);
* ``expected.npz``: ``embeddings`` (per segment, ``vcmr.embed_file``) and ``tag_probabilities``
  (``predict_tags``) computed with the model file and the WAV.

When to regenerate: only when a change to vcmr is MEANT to change embeddings (a new
preprocessing rule, a fixed bug in windowing), and say so in the commit message with the
measured difference. Never to silence the test after a library upgrade: that failure is what
the test is for (see docs/using-models.md, "Embeddings that stay the same"). ``--expected-only``
keeps the model file and the WAV and recomputes the expected numbers; without it the model and
audio are rebuilt too (needed only when the model file format changes).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import vcmr
from vcmr.audio.io import read_audio, write_wav
from vcmr.config import config_to_dict, load_config
from vcmr.inference import EmbeddingModel
from vcmr.io.model_file import save_model_file
from vcmr.models.stages import build

HERE = Path(__file__).resolve().parent
MODEL, AUDIO, EXPECTED = HERE / "tiny.safetensors", HERE / "audio.wav", HERE / "expected.npz"
AUDIO_RATE, MODEL_RATE, TAGS = 22050, 16000, ["low", "high", "noisy"]
ENCODER = ["--n_blocks", "6", "--n_channels", "8,8,16,16,16,32", "--audio_length", "2187",
           "--first_block_params.conv_size", "3", "--first_block_params.out_channels", "8",
           "--output_size", "32", "--sample_rate", str(MODEL_RATE)]


def build_model(seed: int = 0) -> EmbeddingModel:
    """Seeded weights; BatchNorm statistics away from (0, 1) so that every layer's eps matters."""
    torch.manual_seed(seed)
    cfg = config_to_dict(load_config("tagging", None, ENCODER))
    net = build("tagging", cfg, TAGS)
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.2 + 0.01)
    return EmbeddingModel("tagging", cfg, net.state_dict(), TAGS, "reference model")


def synth_audio(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """Two decaying harmonic notes and a noise burst, peak 0.8."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    x = np.zeros_like(t)
    for start, f0 in ((0.0, 220.0), (0.45, 330.0)):
        env = np.where(t >= start, np.exp(-(t - start) * 4.0), 0.0)
        x += env * sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    x += np.where((t > 0.7) & (t < 0.8), rng.standard_normal(t.size) * 0.5, 0.0)
    return (0.8 * x / np.abs(x).max()).astype(np.float32)


def expected_numbers(model_path: Path = MODEL, audio_path: Path = AUDIO) -> dict[str, np.ndarray]:
    """What tests/test_reference.py recomputes and compares."""
    model = vcmr.load_model(model_path, "cpu")
    emb = vcmr.embed_file(audio_path, model).embeddings
    x, sr = read_audio(audio_path)
    probs = np.array(list(model.predict_tags(x, sr).values()), dtype=np.float32)
    return {"embeddings": emb.astype(np.float32), "tag_probabilities": probs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--expected-only", action="store_true",
                        help="keep tiny.safetensors and audio.wav, recompute expected.npz")
    parser.add_argument("--out", type=Path, default=EXPECTED, help="where to write the expected numbers")
    args = parser.parse_args(argv)
    if not args.expected_only:
        save_model_file(build_model(), MODEL)
        write_wav(AUDIO, synth_audio(), AUDIO_RATE)
    numbers = expected_numbers()
    np.savez(args.out, **numbers)
    print(f"wrote {args.out}: embeddings {numbers['embeddings'].shape}, "
          f"tag probabilities {numbers['tag_probabilities'].round(4).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
