import pickle

import numpy as np
import pytest
from prepared_layout import write_prepared

from vcmr.data.audio_visual import AudioVisualDataset, PreparedDataError, derangement


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


@pytest.mark.parametrize("n", [2, 3, 5, 12])
def test_derangement_has_no_fixed_point_and_follows_the_seed(n):
    ids = [f"v{i:02d}" for i in range(n)]
    drawn = [derangement(ids, seed) for seed in range(20)]
    for d in drawn:
        assert sorted(d) == ids and sorted(d.values()) == ids  # a permutation of the ids
        assert all(d[v] != v for v in ids)
    assert derangement(list(reversed(ids)), 7) == drawn[7]  # the same for the same ids and seed
    if n > 2:  # two ids have a single derangement
        assert len({tuple(d.values()) for d in drawn}) > 1


def test_derangement_needs_two_videos():
    with pytest.raises(PreparedDataError, match="at least 2 videos.*derange_pairs false"):
        derangement(["only"], 0)


def _video_number(path):
    return int(path.stem[3:])


def test_deranged_pairs_give_another_videos_features_at_the_same_second(prepared):
    true = AudioVisualDataset(prepared, "train", 16000, 32805, valid_fraction=0.2, seed=3)
    mixed = AudioVisualDataset(prepared, "train", 16000, 32805, valid_fraction=0.2, seed=3,
                               derange_pairs=True)
    assert mixed.ids == true.ids and len(mixed.ids) >= 2
    assert all(mixed.partner[v] != v for v in mixed.ids) and true.partner == {v: v for v in true.ids}
    for epoch in range(2):
        mixed.epoch = true.epoch = epoch
        for idx in range(len(mixed)):
            seg, start = mixed.segments[idx], mixed.crop_start(idx)
            audio, video, _ = mixed[idx]
            true_audio, true_video, _ = true[idx]
            assert np.array_equal(audio, true_audio)  # the audio item is unchanged
            partner = int(mixed.partner[seg.video_id][3:])
            first_row = seg.index * mixed.segment_seconds + start // 16000
            assert np.array_equal(video[:, 0].numpy(), 1000 * partner + first_row + np.arange(mixed.n_seconds))
            assert not np.array_equal(video, true_video)
    again = AudioVisualDataset(prepared, "train", 16000, 32805, valid_fraction=0.2, seed=3, derange_pairs=True)
    assert again.partner == mixed.partner
    copied = pickle.loads(pickle.dumps(mixed))  # what a data-loader worker gets
    assert copied.feature_of == mixed.feature_of and np.array_equal(copied[3][1], mixed[3][1])
    other_seed = AudioVisualDataset(prepared, "train", 16000, 32805, valid_fraction=0.2, seed=4, derange_pairs=True)
    assert other_seed.partner != mixed.partner


def test_deranged_partner_with_fewer_segments_wraps_around(tmp_path):
    write_prepared(tmp_path, n_videos=3, n_segments=3, segment_seconds=3, features=ramp_features)
    (tmp_path / "audio" / "vid01" / "vid01_2.wav").unlink()  # vid01: 2 segments, the others 3
    ds = AudioVisualDataset(tmp_path, "all", 16000, 19683, derange_pairs=True)
    assert len(ds) == 8 and ds.feature_dim == 4
    position = {}
    for idx, seg in enumerate(ds.segments):
        partner = ds.partner[seg.video_id]
        i = position[seg.video_id] = position.get(seg.video_id, -1) + 1
        n_partner = 2 if partner == "vid01" else 3
        _, video, _ = ds[idx]
        expected = 1000 * int(partner[3:]) + (i % n_partner) * 3  # validation-style crop: second 0
        assert video[0, 0].item() == expected


def test_derange_pairs_with_one_training_video_is_a_clear_error(tmp_path):
    write_prepared(tmp_path, n_videos=2, n_segments=2, segment_seconds=2)
    with pytest.raises(PreparedDataError, match="derange_pairs needs at least 2 videos.*got 1"):
        AudioVisualDataset(tmp_path, "train", 16000, 19683, valid_fraction=0.5, derange_pairs=True)


def test_every_process_draws_the_same_derangement():
    """DDP processes and loader workers each build the dataset: the derangement must not depend
    on the process (string hashing, the order a set lists the ids in)."""
    import json
    import os
    import subprocess
    import sys
    code = ("import json; from vcmr.data.audio_visual import derangement; "
            "ids = {f'vid{i:03d}' for i in range(40)}; print(json.dumps(derangement(list(ids), 3)))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": h}).stdout for h in ("1", "2")]
    assert json.loads(runs[0]) == json.loads(runs[1]) == derangement([f"vid{i:03d}" for i in range(40)], 3)
