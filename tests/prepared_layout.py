"""Write the on-disk layout of ``vcmr prepare`` directly, for unit tests of its readers.

Audio comes from the synthetic generator; features are chosen by the test (e.g. row r holds
the value r, to check alignment). End-to-end tests use ``vcmr prepare`` itself instead.
"""
import json

import numpy as np

from vcmr.audio.io import write_wav
from vcmr.demo.synth.music import render_music
from vcmr.demo.synth.tags import random_tags


def write_prepared(root, n_videos=4, n_segments=3, segment_seconds=3, sample_rate=16000,
                   feature_dim=8, seed=0, features=None):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_videos):
        vid = f"vid{i:02d}"
        clip = render_music(random_tags(rng), n_segments * segment_seconds, sample_rate, seed=seed + i)
        seg = segment_seconds * sample_rate
        for k in range(n_segments):
            write_wav(root / "audio" / vid / f"{vid}_{k}.wav", clip.audio[k * seg:(k + 1) * seg], sample_rate)
        n_rows = n_segments * segment_seconds
        f = features(i, n_rows) if features else rng.standard_normal((n_rows, feature_dim))
        (root / "video").mkdir(parents=True, exist_ok=True)
        np.save(root / "video" / f"{vid}.npy", np.asarray(f, dtype=np.float32))
        rows.append({"id": vid, "source": f"{vid}.mp4", "status": "kept", "reason": None,
                     "n_segments": n_segments, "feature_dim": int(np.asarray(f).shape[1])})
    rows.append({"id": "dropped1", "source": "dropped1.mp4", "status": "dropped", "reason": "long_scene"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root
