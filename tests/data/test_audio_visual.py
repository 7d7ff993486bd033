import numpy as np
import pytest
from prepared_layout import write_prepared

from vcmr.data.audio_visual import AudioVisualDataset, PreparedDataError


def ramp_features(i, n_rows):
    """Row r holds 1000 * video + r in every dimension."""
    return np.repeat((1000 * i + np.arange(n_rows))[:, None], 4, axis=1)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("av"), n_videos=6, n_segments=3, segment_seconds=3,
                          features=ramp_features)


def test_items_and_feature_dim_from_data(prepared):
    ds = AudioVisualDataset(prepared, "train", 16000, 2187 * 9, valid_fraction=0.2)  # 1.23 s -> 1 s
    audio, video, idx = ds[0]
    assert audio.shape == (19683,) and video.shape == (1, 4) and ds.feature_dim == 4
    assert ds.segment_seconds == 3


@pytest.mark.parametrize("audio_length", [19683, 32805])  # 1.23 s -> 1 s, 2.05 s -> 2 s of video
def test_video_crop_starts_at_the_second_of_the_audio_crop(prepared, audio_length):
    ds = AudioVisualDataset(prepared, "train", 16000, audio_length, valid_fraction=0.2, seed=3)
    starts = set()
    for epoch in range(4):
        ds.epoch = epoch
        for idx in range(len(ds)):
            start = ds.crop_start(idx)
            _, video, _ = ds[idx]
            seg = ds.segments[idx]
            vid = int(seg.video_id[3:])
            first_row = seg.index * ds.segment_seconds + start // 16000
            expected = 1000 * vid + first_row + np.arange(ds.n_seconds)
            assert np.array_equal(video[:, 0].numpy(), expected)
            assert start + audio_length <= ds.segment_seconds * 16000
            assert start // 16000 + ds.n_seconds <= ds.segment_seconds
            starts.add(start)
    assert len(starts) > 5  # random crops in training


def test_validation_crops_are_fixed(prepared):
    ds = AudioVisualDataset(prepared, "valid", 16000, 19683, valid_fraction=0.2)
    a1, v1, _ = ds[0]
    ds.epoch = 5
    a2, v2, _ = ds[0]
    assert np.array_equal(a1, a2) and np.array_equal(v1, v2)


def test_split_by_video_is_disjoint_and_deterministic(prepared):
    train = AudioVisualDataset(prepared, "train", 16000, 19683, valid_fraction=0.3)
    valid = AudioVisualDataset(prepared, "valid", 16000, 19683, valid_fraction=0.3)
    assert set(train.ids).isdisjoint(valid.ids) and len(train.ids) + len(valid.ids) == 6
    assert "dropped1" not in train.ids + valid.ids
    assert AudioVisualDataset(prepared, "valid", 16000, 19683, valid_fraction=0.3).ids == valid.ids


def test_resampling_to_the_model_rate(prepared):
    ds = AudioVisualDataset(prepared, "train", 8000, 3 * 3 ** 7, valid_fraction=0.2)  # 6561 @ 8 kHz
    audio, video, _ = ds[1]
    assert audio.shape == (6561,) and video.shape == (1, 4)


def test_not_a_prepared_dataset(tmp_path):
    with pytest.raises(PreparedDataError, match="manifest.jsonl is missing.*vcmr prepare"):
        AudioVisualDataset(tmp_path, "train", 16000, 19683)
    with pytest.raises(PreparedDataError, match="does not exist"):
        AudioVisualDataset(tmp_path / "nope", "train", 16000, 19683)


def test_audio_and_features_disagree(tmp_path):
    write_prepared(tmp_path, n_videos=2, n_segments=3, segment_seconds=3,
                   features=lambda i, n: np.zeros((n - 4, 4)))
    with pytest.warns(UserWarning, match="vid00"), pytest.raises(PreparedDataError, match="disagree in length"):
        AudioVisualDataset(tmp_path, "all", 16000, 19683)


def test_crop_longer_than_segment(prepared):
    with pytest.raises(PreparedDataError, match="smaller SampleCNN input"):
        AudioVisualDataset(prepared, "train", 16000, 98415)


def _bad_features(kind):
    """Features of 6 videos (3 segments x 3 s = 9 rows, 4-D); video 2 broken as ``kind``."""
    def make(i, n):
        f = ramp_features(i, n).astype(np.float32)
        if i != 2:
            return f
        if kind == "nan":
            f[4, 1] = np.nan
        elif kind == "inf":
            f[0, 0] = np.inf
        elif kind == "short":
            f = f[:5]
        elif kind == "width":
            f = np.zeros((n, 7), np.float32)
        return f
    return make


@pytest.mark.parametrize("kind,reason", [
    ("nan", "NaN or infinite values in 1 of 9 rows (first at second 4)"),
    ("inf", "NaN or infinite values in 1 of 9 rows (first at second 0)"),
    ("short", "5 rows of features but the audio covers 3 x 3 s"),
    ("width", "7-D features; the other videos have 4-D"),
])
def test_one_bad_feature_file_is_skipped_with_a_warning(tmp_path, kind, reason):
    write_prepared(tmp_path, n_videos=6, n_segments=3, segment_seconds=3, features=_bad_features(kind))
    with pytest.warns(UserWarning, match="skipping video 'vid02'") as record:
        ds = AudioVisualDataset(tmp_path, "all", 16000, 19683)
    assert reason in str(record[0].message) and "vcmr prepare" in str(record[0].message)
    assert ds.ids == ["vid00", "vid01", "vid03", "vid04", "vid05"] and ds.skipped.keys() == {"vid02"}
    assert ds.feature_dim == 4 and len(ds) == 15
    assert all(np.isfinite(ds[i][1].numpy()).all() for i in range(len(ds)))


def test_unreadable_feature_file_and_missing_audio_are_skipped(tmp_path):
    write_prepared(tmp_path, n_videos=4, n_segments=2, segment_seconds=2)
    (tmp_path / "video" / "vid01.npy").write_bytes(b"\x93NUMPY garbage")
    for w in (tmp_path / "audio" / "vid03").iterdir():
        w.unlink()
    with pytest.warns(UserWarning) as record:
        ds = AudioVisualDataset(tmp_path, "all", 16000, 19683)
    messages = " ".join(str(r.message) for r in record)
    assert "'vid01'" in messages and "cannot be read as a .npy array" in messages
    assert "'vid03'" in messages and "no audio segments" in messages
    assert ds.ids == ["vid00", "vid02"]


def test_no_usable_video_left_is_a_clear_error(tmp_path):
    write_prepared(tmp_path, n_videos=2, n_segments=2, segment_seconds=2,
                   features=lambda i, n: np.full((n, 4), np.nan))
    with pytest.warns(UserWarning), pytest.raises(PreparedDataError, match=r"none of the 2 video\(s\).*NaN.*re-run `vcmr prepare`"):
        AudioVisualDataset(tmp_path, "all", 16000, 19683)
