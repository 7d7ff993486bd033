"""Songs cut into segments for each overlap ratio, and segment scores aggregated per song,
on hand-made data."""
import numpy as np
import pytest

from vcmr.errors import VcmrError
from vcmr.metrics.songs import aggregate, segment_song, segment_starts, sigmoid


def test_segment_starts_hand_made():
    assert segment_starts(10, 4, 0.0) == [0, 4]  # tail of 2 samples dropped
    assert segment_starts(10, 4, 0.5) == [0, 2, 4, 6]
    assert segment_starts(12, 4, 0.75) == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert segment_starts(3, 4, 0.0) == [0]  # shorter than one window: one padded window
    assert segment_starts(4, 4, 0.5) == [0]
    # odd window (as the paper's 98415): the 0.5 grid still contains the whole 0.0 grid
    n, L = 465600, 98415
    assert set(segment_starts(n, L, 0.0)) <= set(segment_starts(n, L, 0.5))
    assert segment_starts(n, L, 0.0) == [0, 98415, 196830, 295245] and len(segment_starts(n, L, 0.5)) == 8
    with pytest.raises(VcmrError, match="overlap"):
        segment_starts(10, 4, 1.0)


def test_segment_song_shares_segments_between_grids():
    x = np.arange(10, dtype=np.float32)
    segs, grid = segment_song(x, 4, [0.0, 0.5])
    assert segs.shape == (4, 4)  # starts 0, 2, 4, 6: the 0.0 grid (0, 4) is inside the 0.5 grid
    np.testing.assert_array_equal(segs[grid[0.0]], [[0, 1, 2, 3], [4, 5, 6, 7]])
    np.testing.assert_array_equal(segs[grid[0.5]][:, 0], [0, 2, 4, 6])
    short, g = segment_song(np.ones(3, dtype=np.float32), 4, [0.0])
    np.testing.assert_array_equal(short, [[1, 1, 1, 0]])


def test_aggregation_hand_made():
    p = np.array([[0.9, 0.2, 0.6], [0.7, 0.4, 0.4], [0.2, 0.0, 0.8]])
    np.testing.assert_allclose(aggregate(p, "average"), [0.6, 0.2, 0.6])
    np.testing.assert_allclose(aggregate(p, "max"), [0.9, 0.4, 0.8])
    np.testing.assert_allclose(aggregate(p, "majority"), [2 / 3, 0.0, 2 / 3])
    with pytest.raises(VcmrError, match="aggregation"):
        aggregate(p, "median")


def test_sigmoid_hand_made():
    np.testing.assert_allclose(sigmoid([0.0, 2.0, -2.0]), [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))])
    with np.errstate(over="ignore"):
        assert sigmoid(np.array([-1000.0, 1000.0])).tolist() == [0.0, 1.0]
