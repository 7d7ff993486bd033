"""The features-level corpus: a prepared dataset written directly, whose frame features show
the mode (and the instruments) through fixed directions of the feature space."""
import json

import numpy as np
import pytest

from vcmr.data.audio_visual import AudioVisualDataset
from vcmr.demo.synth.features import FeatureWorld, camera, plan_feature_corpus, write_feature_corpus
from vcmr.errors import VcmrError

WORLD = FeatureWorld(n_segments=2, segment_seconds=3, sample_rate=8000, feature_dim=16)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    return root, write_feature_corpus(root, 8, seed=3, world=WORLD, workers=1)


def test_stage_2_reads_it_as_a_prepared_dataset(corpus):
    root, rows = corpus
    ds = AudioVisualDataset(root, "train", 8000, 19683, valid_fraction=0.25)
    audio, video, _ = ds[0]
    assert audio.shape == (19683,) and video.shape == (2, 16)
    assert len(json.loads((root / "world.json").read_text())) > 5
    assert {r["mode"] for r in rows} == {"major", "minor"}
    assert sum(r["mode"] == "major" for r in rows) == 4   # balanced


def test_features_show_the_mode_along_its_direction(corpus):
    root, rows = corpus
    mode_dir = camera(WORLD, 3)["mode"]
    for r in rows:
        f = np.load(root / "video" / f"{r['id']}.npy")
        proj = f @ mode_dir
        assert f.shape == (6, 16)
        assert (np.sign(proj) == (1 if r["mode"] == "major" else -1)).all()


def test_same_seed_same_corpus_other_seed_other(tmp_path, corpus):
    root, rows = corpus
    again = write_feature_corpus(tmp_path / "again", 8, seed=3, world=WORLD, workers=2)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
    a = np.load(root / "video" / f"{rows[0]['id']}.npy")
    assert np.array_equal(a, np.load(tmp_path / "again" / "video" / f"{rows[0]['id']}.npy"))
    other = plan_feature_corpus(8, 4, WORLD)
    assert [s["id"] for s in other] != [r["id"] for r in rows]


def test_too_few_videos_is_a_clear_error(tmp_path):
    with pytest.raises(VcmrError, match="at least 2 videos"):
        write_feature_corpus(tmp_path, 1, world=WORLD)
