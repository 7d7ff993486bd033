"""End-to-end preparation of a synthetic music-video corpus (small scale, see conftest.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from vcmr.config import load_config
from vcmr.prepare.manifest import read_manifest
from vcmr.prepare.merge import merge_outputs
from vcmr.prepare.pipeline import prepare_videos
from prepare_helpers import copy_good_videos, kill_after_first_row

REQUIRED = ("id", "source", "status", "reason", "duration_s", "n_scenes", "max_scene_s",
            "n_segments", "feature_dim", "frame_encoder", "seconds_taken")


def _status(expected: str):
    status, _, reason = expected.partition(":")
    return status, reason or None


def test_statuses_and_reasons(prepared, corpus):
    rows = prepared["rows"]
    got = {vid: (r["status"], r["reason"]) for vid, r in rows.items()}
    want = {vid: _status(m["expected"]) for vid, m in corpus["meta"].items()}
    want["empty"] = ("failed", "decode_error")
    assert got == want
    roles = corpus["roles"]
    assert got[roles["long"]] == ("dropped", "long_scene") and got[roles["short"]] == ("dropped", "too_short")
    assert got[roles["silent"]] == ("failed", "no_audio")
    assert got[roles["truncated"]] == ("failed", "decode_error")
    for r in rows.values():
        assert all(k in r for k in REQUIRED), r
    assert prepared["summary"]["counts"] == {"kept": 3, "dropped": 2, "failed": 3}


def test_scene_cuts_found_where_made(prepared, corpus, good_cuts):
    row = prepared["rows"]["good"]
    assert row["start_s"] == pytest.approx(3.0)
    inside = [c for c in good_cuts if 3.0 < c < 27.0]
    assert len(row["scene_cuts_s"]) == len(inside)
    assert np.allclose(row["scene_cuts_s"], inside, atol=0.11)  # within one frame at 10 fps
    assert row["n_scenes"] == len(inside) + 1
    assert row["max_scene_s"] == pytest.approx(4.5, abs=0.11)
    # the generator's random cuts (random tags, one clip quiet: the weakest cuts). A cut is
    # reported at the first frame of the new scene, at most one frame (0.1 s) after it. Every
    # reported cut is a planted one, and every planted cut is found, including one 1.0 s after
    # the window start (seed 2): the scanner's pre-roll lifts PySceneDetect's min_scene_len
    # restriction on the first scene.
    for vid in corpus["roles"]["kept"]:
        m, row = corpus["meta"][vid], prepared["rows"][vid]
        lo, hi = row["start_s"], row["start_s"] + row["window_s"]
        planted = np.array([c for c in m["scene_cuts"] if lo < c < hi])
        found = np.array(row["scene_cuts_s"])
        lag = found[:, None] - planted[None, :]
        hit = (lag >= -1e-6) & (lag <= 0.1 + 1e-6)
        assert hit.any(axis=1).all(), (vid, "false cut", found, planted)
        assert hit.any(axis=0).all(), (vid, m["tags"], "missed cut", found, planted)
        assert len(found) == len(planted)
        assert row["n_scenes"] == len(found) + 1
    long = prepared["rows"][corpus["roles"]["long"]]
    assert long["max_scene_s"] > 6


def test_audio_segments(prepared, corpus):
    out, row = prepared["out"], prepared["rows"]["good"]
    files = [out / "audio" / "good" / f"good_{k}.wav" for k in range(8)]
    assert [str(f.relative_to(out)) for f in files] == row["audio_files"]
    segs = []
    for f in files:
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 48000, "PCM_16")
        segs.append(sf.read(str(f), dtype="float32")[0])
    got = np.concatenate(segs)
    # the audio is the clip's audio of the window 3 .. 27 s, delayed by the AAC encoder's
    # 1024 priming samples (PyAV's MP4 writer does not signal them, so decoders keep them)
    ref = corpus["clips"]["good"].audio[3 * 16000: 27 * 16000]
    a, b = 5 * 16000, 7 * 16000
    corr = [np.corrcoef(got[a + lag: b + lag], ref[a:b])[0, 1] for lag in range(0, 1101)]
    assert max(corr) > 0.99 and int(np.argmax(corr)) in (0, 1024)


def test_features_change_at_cut(prepared, good_cuts):
    feats = np.load(prepared["out"] / "video" / "good.npy")
    assert feats.shape == (24, 512) and feats.dtype == np.float32
    # cuts at 6, 15, 19, 23 s of the video = seconds 3, 12, 16, 20 of the window
    diffs = np.linalg.norm(np.diff(feats, axis=0), axis=1)  # diffs[t-1]: row t-1 -> row t
    at_cut = [diffs[t - 1] for t in (3, 12, 16, 20)]
    not_cut = [diffs[t - 1] for t in range(1, 24) if t not in (3, 7, 8, 12, 16, 20)]
    # the synthetic pictures move (orbiting shapes, beat flashes), yet every second with a cut
    # stands out from every second without one (measured: 8.2 vs at most 1.9)
    assert min(at_cut) > 2 * max(not_cut)


def test_manifest_is_truthful_for_dropped_and_failed(prepared, corpus):
    out, rows, roles, meta = prepared["out"], prepared["rows"], corpus["roles"], corpus["meta"]
    long = roles["long"]
    assert not (out / "audio" / long).exists() and not (out / "video" / f"{long}.npy").exists()
    assert "no audio" in rows[roles["silent"]]["error"]
    assert rows[roles["truncated"]]["error"]
    assert "empty" in rows["empty"]["error"]
    short = roles["short"]
    assert rows[short]["duration_s"] == pytest.approx(meta[short]["duration"], abs=0.1)
    kept = sorted(["good", *roles["kept"]])
    assert sorted(p.name for p in (out / "video").iterdir()) == [f"{v}.npy" for v in kept]
    assert sorted(p.name for p in (out / "audio").iterdir()) == kept


def test_rerun_skips_finished_and_retries_failed(prepared, corpus):
    out = prepared["out"]
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")}
    summary = prepare_videos([corpus["dir"]], out, prepared["cfg"], progress=False)
    assert summary["skipped_done"] == 5  # kept and dropped are done; failed are retried
    assert summary["counts"] == {"failed": 3}
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.wav")} == before
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 8  # compacted: one row per id


def _outputs(d: Path) -> dict:
    rows = read_manifest(d)
    out = {}
    for vid, r in rows.items():
        r = dict(r)
        r.pop("seconds_taken")
        out[vid] = r
        for f in r.get("audio_files", []):
            out[f] = sf.read(str(d / f), dtype="int16")[0]
        if r.get("video_file"):
            out[r["video_file"]] = np.load(d / r["video_file"])
    return out


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.allclose(a[k], b[k], atol=1e-5), k
        else:
            assert a[k] == b[k], k


def test_partial_run_resumes_to_same_outputs(corpus, tiny_clip_dir, small, tmp_path):
    videos = copy_good_videos(corpus, tmp_path / "in", 2)
    cfg = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir)])
    prepare_videos([videos / "v0.mp4"], tmp_path / "resumed", cfg, progress=False)
    # leftovers of a run killed while writing v1: a WAV, a half-written feature file
    (tmp_path / "resumed" / "audio" / "v1").mkdir(parents=True)
    (tmp_path / "resumed" / "audio" / "v1" / "v1_0.wav").write_bytes(b"RIFF")
    (tmp_path / "resumed" / "video" / "v1.npy.tmp").write_bytes(b"\x93NUMPY")
    resumed = prepare_videos([videos], tmp_path / "resumed", cfg, progress=False)
    assert resumed["skipped_done"] == 1 and resumed["counts"] == {"kept": 1, "dropped": 1}
    prepare_videos([videos], tmp_path / "clean", cfg, progress=False)
    _assert_same(_outputs(tmp_path / "resumed"), _outputs(tmp_path / "clean"))
    assert not list((tmp_path / "resumed").rglob("*.tmp"))


@pytest.mark.slow
def test_killed_run_resumes_to_same_outputs(corpus, tiny_clip_dir, small, tmp_path):
    videos = copy_good_videos(corpus, tmp_path / "in", 3)
    args = ["prepare", str(videos), "--out", str(tmp_path / "killed"), "--no-progress",
            *small, "--frame_encoder_path", str(tiny_clip_dir)]
    n_done = kill_after_first_row(args, tmp_path / "killed", timeout=120)
    assert 1 <= n_done < 4, "the run was not interrupted midway"
    # a half-written output of a not-finished video must not count as done
    (tmp_path / "killed" / "video").mkdir(exist_ok=True)
    (tmp_path / "killed" / "video" / "v2.npy.tmp").write_bytes(b"\x93NUMPY half")
    cfg = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir)])
    resumed = prepare_videos([videos], tmp_path / "killed", cfg, progress=False)
    assert resumed["skipped_done"] == n_done
    prepare_videos([videos], tmp_path / "clean", cfg, progress=False)
    _assert_same(_outputs(tmp_path / "killed"), _outputs(tmp_path / "clean"))
    assert not list((tmp_path / "killed").rglob("*.tmp"))


def test_shards_and_merge_equal_single_run(corpus, tiny_clip_dir, small, tmp_path):
    videos = copy_good_videos(corpus, tmp_path / "in", 2)
    cfg = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir)])
    parts = []
    for i in range(2):
        parts.append(tmp_path / f"part{i}")
        prepare_videos([videos], parts[-1], cfg, shard=(i, 2), progress=False)
    ids = [set(read_manifest(p)) for p in parts]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == {"v0", "v1", "long"}
    counts = merge_outputs(parts, tmp_path / "merged")
    assert counts == {"kept": 2, "dropped": 1}
    prepare_videos([videos], tmp_path / "single", cfg, progress=False)
    _assert_same(_outputs(tmp_path / "merged"), _outputs(tmp_path / "single"))


def test_workers_give_same_outputs(corpus, tiny_clip_dir, small, tmp_path):
    videos = copy_good_videos(corpus, tmp_path / "in", 2)
    cfg0 = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir)])
    cfg2 = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir),
                                                 "--workers", "2"])
    prepare_videos([videos], tmp_path / "w0", cfg0, progress=False)
    prepare_videos([videos], tmp_path / "w2", cfg2, progress=False)
    _assert_same(_outputs(tmp_path / "w0"), _outputs(tmp_path / "w2"))


def test_download_failure_is_recorded(corpus, tiny_clip_dir, small, tmp_path):
    pytest.importorskip("yt_dlp")
    lst = tmp_path / "list.txt"
    # a refused local connection: fails at once, offline
    lst.write_text("# one per line\nhttp://127.0.0.1:9/clip.mp4\n")
    cfg = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir)])
    summary = prepare_videos([lst, corpus["dir"] / "good.mp4"], tmp_path / "out", cfg, progress=False)
    rows = read_manifest(tmp_path / "out")
    bad = [r for r in rows.values() if r["source"].startswith("http")]
    assert len(bad) == 1 and (bad[0]["status"], bad[0]["reason"]) == ("failed", "download_error")
    assert rows["good"]["status"] == "kept"
    assert summary["counts"] == {"failed": 1, "kept": 1}


def test_keep_shorter_rule(corpus, tiny_clip_dir, small, tmp_path):
    cfg = load_config("prepare", None, small + ["--frame_encoder_path", str(tiny_clip_dir),
                                                "--too_short_rule", "keep_shorter"])
    vid = corpus["roles"]["short"]
    m = corpus["meta"][vid]
    prepare_videos([corpus["dir"] / f"{vid}.mp4"], tmp_path, cfg, progress=False)
    row = read_manifest(tmp_path)[vid]
    # as many whole 3 s segments as fit, the window in the middle of the video
    n = int(m["duration"] // 3)
    assert 1 <= n < 8
    assert (row["status"], row["n_segments"], row["window_s"]) == ("kept", n, 3.0 * n)
    assert row["start_s"] == pytest.approx((m["duration"] - 3 * n) / 2, abs=0.1)
    lo, hi = row["start_s"], row["start_s"] + row["window_s"]
    assert np.allclose(row["scene_cuts_s"], [c for c in m["scene_cuts"] if lo < c < hi], atol=0.11)
    assert len(row["audio_files"]) == n
    assert np.load(tmp_path / "video" / f"{vid}.npy").shape == (3 * n, 512)


def test_cli_with_efficientnet_lite0(corpus, small, tmp_path, capsys):
    from vcmr.cli import main
    code = main(["prepare", str(corpus["dir"] / "good.mp4"), "--out", str(tmp_path),
                 "--frame-encoder", "efficientnet-lite0", "--no-progress", *small])
    assert code == 0
    assert "1 kept" in capsys.readouterr().out
    feats = np.load(tmp_path / "video" / "good.npy")
    assert feats.shape == (24, 1280) and np.isfinite(feats).all() and feats.std() > 0
    assert read_manifest(tmp_path)["good"]["frame_encoder"] == "efficientnet-lite0"


def test_cli_errors_are_clear(tmp_path, capsys):
    from vcmr.cli import main
    assert main(["prepare", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "o"), "--shard", "3/2"]) == 1
    assert "--shard" in capsys.readouterr().err
    assert main(["prepare", "merge", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "manifest.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_paper_numbers(tiny_clip_dir, video_maker, tmp_path):
    """A 150 s video with the default config: 8 x 240000-sample WAVs and a (120, 512) array."""
    video_maker(tmp_path / "paper.mp4", 150, [20.0, 45.0, 70.0, 95.0, 120.0, 140.0], seed=7)
    cfg = load_config("prepare", None, ["--frame_encoder_path", str(tiny_clip_dir), "--workers", "0"])
    prepare_videos([tmp_path / "paper.mp4"], tmp_path / "out", cfg, progress=False)
    row = read_manifest(tmp_path / "out")["paper"]
    assert (row["status"], row["n_segments"], row["start_s"]) == ("kept", 8, 15.0)
    assert np.allclose(row["scene_cuts_s"], [20, 45, 70, 95, 120], atol=0.11)
    for k in range(8):
        info = sf.info(str(tmp_path / "out" / "audio" / "paper" / f"paper_{k}.wav"))
        assert (info.frames, info.samplerate, info.channels) == (240000, 16000, 1)
    assert np.load(tmp_path / "out" / "video" / "paper.npy").shape == (120, 512)


@pytest.mark.slow
def test_paper_drop_rules(tiny_clip_dir, video_maker, tmp_path):
    """Default config, the issue's own cases in one run: a 40 s scene inside the middle 120 s
    drops the clip (long_scene); a 60 s video is too short for the window (too_short)."""
    d = tmp_path / "videos"
    video_maker(d / "long40.mp4", 150, [20.0, 45.0, 85.0, 110.0, 130.0], seed=3)  # 45-85 s
    video_maker(d / "short60.mp4", 60, [10.0, 25.0, 40.0], seed=4)
    cfg = load_config("prepare", None, ["--frame_encoder_path", str(tiny_clip_dir), "--workers", "0"])
    summary = prepare_videos([d], tmp_path / "out", cfg, progress=False)
    rows = read_manifest(tmp_path / "out")
    assert (rows["long40"]["status"], rows["long40"]["reason"]) == ("dropped", "long_scene")
    assert rows["long40"]["max_scene_s"] > 30.0
    assert (rows["short60"]["status"], rows["short60"]["reason"]) == ("dropped", "too_short")
    assert summary["reasons"] == {"dropped:long_scene": 1, "dropped:too_short": 1}
    assert not (tmp_path / "out" / "video").exists() or not list((tmp_path / "out" / "video").iterdir())


@pytest.mark.slow
def test_seed_compatible_script_runs(corpus, small, tmp_path):
    """``python vcmr/scripts/preprocess_data.py`` takes the options of ``vcmr prepare``."""
    script = Path(__file__).resolve().parents[2] / "vcmr" / "scripts" / "preprocess_data.py"
    cmd = [sys.executable, str(script), str(corpus["dir"] / "good.mp4"), "--out", str(tmp_path),
           "--frame-encoder", "efficientnet-lite0", "--no-progress", *small]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 kept" in out.stdout
    assert np.load(tmp_path / "video" / "good.npy").shape == (24, 1280)
