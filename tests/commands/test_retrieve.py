"""``vcmr retrieve --explain``: one PNG + CSV timeline per result, named after query and match."""
import csv
import json

import numpy as np
import pytest
import torch

from tests.prepared_layout import write_prepared
from vcmr.audio.io import read_audio
from vcmr.cli import main
from vcmr.config import config_from_dict
from vcmr.evaluate.explain import similarity_timeline
from vcmr.inference import EmbeddingModel
from vcmr.io.model_file import save_model_file
from vcmr.models.stages import build

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("retrieve")
    root = write_prepared(tmp / "av", n_videos=3, n_segments=3, segment_seconds=3, feature_dim=8)
    torch.manual_seed(0)
    cfg = config_from_dict("video", {
        "sample_rate": 6561, "audio_length": 6561, "n_blocks": 7, "n_channels": [8] * 7,
        "first_block_params": {"out_channels": 8, "conv_size": 3}, "output_size": 16,
        "feature_dim": 8, "lstm_layers": 1, "lstm_hidden": 8, "video_hidden": 16,
        "projection_dim": 8, "freeze_blocks": 0, "video_crop_seconds": 2})
    model = EmbeddingModel("video", cfg, build("video", cfg).state_dict())
    return root, save_model_file(model, tmp / "tiny.safetensors"), model


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_video_query_writes_one_timeline_per_hit(setup, tmp_path, capsys):
    root, model_file, model = setup
    out = tmp_path / "why"
    assert main(["retrieve", "--ckpt", str(model_file), "--dataset_dir", str(root), "--video", "vid00",
                 "--top", "3", "--explain", str(out), "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["results"]
    assert len(hits) == 3
    for hit in hits:
        name = f"vid00_{hit['id']}_segment{hit['segment']}"
        assert hit["explanation"] == {"png": str(out / f"{name}.png"), "csv": str(out / f"{name}.csv")}
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        rows = read_csv(out / f"{name}.csv")
        # 3 segments of 3 s; the segment column is second // 3 of the matched video
        assert [int(r["second"]) for r in rows] == list(range(9))
        assert [int(r["segment"]) for r in rows] == [s // 3 for s in range(9)]
        assert [int(r["window_end"]) - int(r["window_start"]) for r in rows] == [2] * 9
        audio = np.concatenate([read_audio(root / "audio" / hit["id"] / f"{hit['id']}_{k}.wav")[0]
                                for k in range(3)])
        expected = similarity_timeline(model, audio, 16000, np.load(root / "video" / "vid00.npy"))
        np.testing.assert_allclose([float(r["similarity"]) for r in rows], expected.similarity, atol=1e-5)


def test_audio_query_compares_the_file_with_each_video(setup, tmp_path, capsys):
    root, model_file, _ = setup
    out = tmp_path / "why"
    query = root / "audio" / "vid01" / "vid01_0.wav"
    assert main(["retrieve", "--ckpt", str(model_file), "--dataset_dir", str(root), "--audio", str(query),
                 "--top", "2", "--explain", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"timelines (PNG + CSV) in {out}" in text
    files = sorted(p.name for p in out.iterdir())
    assert len(files) == 4 and all(f.startswith("vid01_0_vid0") for f in files), files
    rows = read_csv(next(out.glob("*.csv")))
    assert [int(r["second"]) for r in rows] == [0, 1, 2]  # the 3-s query is the shorter input


def test_explain_into_a_file_is_a_clear_error(setup, tmp_path, capsys):
    root, model_file, _ = setup
    (tmp_path / "f").write_text("x")
    assert main(["retrieve", "--ckpt", str(model_file), "--dataset_dir", str(root), "--video", "vid00",
                 "--explain", str(tmp_path / "f")]) == 1
    assert "--explain" in capsys.readouterr().err
