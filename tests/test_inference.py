"""EmbeddingModel.embed builds its windows lazily, one batch at a time (issue 23 row 14)."""
from __future__ import annotations

import tracemalloc

import numpy as np
import torch

from embed_helpers import SR, music, tiny_model
from vcmr.inference import segment_audio


def test_overlap_099_holds_one_batch_of_windows_and_matches_the_one_array_result():
    model = tiny_model("music")
    model.batch_size = 4
    x = music(2.0)
    seg = model.segment_samples
    windows, starts = segment_audio(x, seg, 0.99)  # the old one-array computation
    assert len(windows) > 1000
    with torch.no_grad():
        expected = model.embed_segments(windows).numpy()
    held = []
    inner = model.embed_segments
    model.embed_segments = lambda w, space="encoder": (held.append(len(w)), inner(w, space))[1]
    tracemalloc.start()
    e = model.embed(x, SR, overlap=0.99)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_allclose(e.embeddings, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.round(e.starts * SR).astype(int), starts)
    assert max(held) <= 4 and sum(held) == len(windows)
    assert peak < windows.nbytes / 4  # the (n, segment) array is never built
