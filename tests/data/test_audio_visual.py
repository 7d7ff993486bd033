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
    with pytest.raises(PreparedDataError, match="disagree in length"):
        AudioVisualDataset(tmp_path, "all", 16000, 19683)


def test_crop_longer_than_segment(prepared):
    with pytest.raises(PreparedDataError, match="smaller SampleCNN input"):
        AudioVisualDataset(prepared, "train", 16000, 98415)
