"""Music-video corpus: metadata, faulty cases and determinism; and the `vcmr synth` command."""
import json

import numpy as np
import pytest

av = pytest.importorskip("av")

from vcmr.cli import main
from vcmr.demo.synth.corpus import MAX_SCENE_SECONDS, make_music_video_corpus, plan_corpus

SMALL = dict(size=(64, 48), fps=4, sample_rate=16000)


def check_metadata(out, rows, n):
    ids = (out / "video_ids.txt").read_text().splitlines()
    meta = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert ids == [r["id"] for r in rows] == [m["id"] for m in meta] and len(set(ids)) == n
    assert all(len(i) == 11 and i[0].isalnum() for i in ids)
    for m in meta:
        assert {"tags", "tempo_bpm", "mode", "instruments", "file", "scene_cuts", "duration",
                "expected"} <= set(m)
    return meta


def check_files(out, rows):
    for r in rows:
        path = out / r["file"]
        if r["expected"] == "failed:decode_error":
            with pytest.raises(av.error.FFmpegError):
                with av.open(str(path)) as c:
                    list(c.decode(video=0))
            continue
        with av.open(str(path)) as c:
            kinds = sorted(s.type for s in c.streams)
            assert abs(c.duration / 1e6 - r["duration"]) < 0.5
        assert kinds == (["video"] if r["expected"] == "failed:no_audio" else ["audio", "video"])


def test_plan_scene_lengths_and_expected_outcomes():
    specs = plan_corpus(40, 0, 150.0, {"long_scene": 5, "too_short": 5, "no_audio": 2, "corrupt": 2})
    counts = {}
    for s in specs:
        counts[s["expected"]] = counts.get(s["expected"], 0) + 1
        scenes = np.diff([0.0, *s["scene_cuts"], s["duration"]])
        assert scenes.min() > 0
        assert (s["fault"] == "long_scene") == (scenes.max() > MAX_SCENE_SECONDS)
        assert (s["fault"] == "too_short") == (s["duration"] < 120)
        if s["fault"] is None:
            assert scenes[:-1].min() >= 4.0 and scenes[:-1].max() <= 12.0 and scenes[-1] <= 13.0
    assert counts == {"kept": 26, "dropped:long_scene": 5, "dropped:too_short": 5,
                      "failed:no_audio": 2, "failed:decode_error": 2}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    rows = make_music_video_corpus(out, 3, seed=5, duration=12.0, n_no_audio=1, n_corrupt=1,
                                   workers=2, **SMALL)
    return out, rows


def test_small_corpus_files_and_metadata(corpus):
    out, rows = corpus
    meta = check_metadata(out, rows, 3)
    assert sorted(m["expected"] for m in meta) == ["dropped:too_short", "failed:decode_error",
                                                   "failed:no_audio"]
    check_files(out, rows)


def test_same_seed_same_corpus_whatever_the_workers(tmp_path, corpus):
    out, rows = corpus
    again = make_music_video_corpus(tmp_path, 3, seed=5, duration=12.0, n_no_audio=1, n_corrupt=1,
                                    workers=1, **SMALL)
    assert again == rows
    for r in rows:
        assert (tmp_path / r["file"]).read_bytes() == (out / r["file"]).read_bytes()


@pytest.mark.slow
def test_full_length_corpus_with_every_case(tmp_path):
    rows = make_music_video_corpus(tmp_path, 6, seed=3, duration=125.0, n_long_scene=1,
                                   n_too_short=1, n_no_audio=1, n_corrupt=1, workers=2, **SMALL)
    meta = check_metadata(tmp_path, rows, 6)
    assert sorted(m["expected"] for m in meta) == sorted(
        ["kept", "kept", "dropped:long_scene", "dropped:too_short", "failed:no_audio",
         "failed:decode_error"])
    check_files(tmp_path, rows)


def test_cli_synth_commands(tmp_path, capsys):
    assert main(["synth", "mtg-jamendo", "--out", str(tmp_path / "j"), "--n", "3", "--duration", "1",
                 "--workers", "1", "--no-progress"]) == 0
    assert (tmp_path / "j/data/autotagging_moodtheme.tsv").is_file()
    assert main(["synth", "magnatagatune", "--out", str(tmp_path / "m"), "--n", "3", "--duration", "1",
                 "--workers", "1", "--no-progress"]) == 0
    assert (tmp_path / "m/won2020/train.npy").is_file()
    assert main(["synth", "music-videos", "--out", str(tmp_path / "v"), "--n", "1", "--duration", "3",
                 "--size", "64x48", "--workers", "1", "--no-progress"]) == 0
    assert len((tmp_path / "v/video_ids.txt").read_text().split()) == 1
    assert "wrote 1 videos" in capsys.readouterr().out
    assert main(["synth", "music-videos", "--out", str(tmp_path / "w"), "--n", "2", "--n-corrupt", "3",
                 "--no-progress"]) == 1
    assert "raise --n" in capsys.readouterr().err
    assert main(["synth", "music-videos", "--out", str(tmp_path / "w"), "--n", "1", "--size", "big"]) == 1
