"""Real music (../shared/data/media, see shared/data/SOURCES.md) through stage 1 and embed:
two Ogg Vorbis recordings, 44.1 and 48 kHz stereo, one with an MJPEG cover-art stream and one
with a space in its name. The files are linked from a temporary folder, never copied into
the repository."""
from __future__ import annotations

import numpy as np
import pytest

from vcmr.cli import main

MUSIC = ("Kevin_MacLeod_-_Vibe_Ace.ogg", "Chimes They Fade.ogg")


@pytest.mark.slow
def test_real_music_trains_and_embeds(real_media, tmp_path, capsys):
    music = tmp_path / "music folder"
    music.mkdir()
    for name in MUSIC:
        (music / name).write_bytes((real_media / name).read_bytes())  # links out of the folder are not followed
    runs = tmp_path / "runs"
    code = main(["train", "music", "--config", "config/tiny.yaml", "--dataset_dir", str(music),
                 "--log_dir", str(runs), "--max_steps", "3", "--batch_size", "2",
                 "--progress_bar", "false"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (ckpt,) = runs.glob("music/version_0/checkpoints/last.ckpt")
    emb = tmp_path / "emb.npz"
    code = main(["embed", *[str(music / n) for n in MUSIC], "--ckpt", str(ckpt), "--out", str(emb),
                 "--song-level", "--quiet", "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0, err
    z = np.load(emb)
    vectors = next(z[k] for k in z.files if z[k].dtype.kind == "f" and z[k].ndim == 2)
    assert vectors.shape == (2, 64) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])  # two different songs
    names = [str(v) for k in z.files if z[k].dtype.kind == "U" for v in z[k]]
    assert any("Chimes They Fade.ogg" in n for n in names), z.files
