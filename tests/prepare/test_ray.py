"""``vcmr prepare --engine ray``: same outputs and guarantees as the local engine.

One local Ray instance (num_cpus=2) is shared by the tests of this module (starting Ray takes
about 10 s on a loaded 2-core machine); a subprocess driver joins it with --ray-address.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from vcmr.commands.prepare import shard_from_env
from vcmr.config import load_config
from vcmr.errors import VcmrError
from vcmr.prepare.manifest import read_manifest
from vcmr.prepare.pipeline import prepare_videos
from prepare_helpers import (DiskFull, WorkerDies, copy_good_videos, kill_after_first_row,
                             patch_decoding, patch_encoding)


@pytest.fixture(scope="module")
def ray_address():
    ray = pytest.importorskip("ray")
    import logging
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING,
             log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def _cfg(small, clip_dir):
    return load_config("prepare", None, small + ["--frame_encoder_path", str(clip_dir)])


def on_ray(cfg, **ray_keys):
    """``cfg`` with ``engine: ray`` and the given ``ray_*`` keys."""
    return dataclasses.replace(cfg, engine="ray", **ray_keys)


def _assert_same_dataset(a: Path, b: Path) -> None:
    """Manifests equal apart from timings, WAVs byte-identical, features within 1e-6."""
    rows_a, rows_b = read_manifest(a), read_manifest(b)
    assert rows_a.keys() == rows_b.keys()
    for vid in rows_a:
        ra, rb = dict(rows_a[vid]), dict(rows_b[vid])
        ra.pop("seconds_taken"), rb.pop("seconds_taken")
        assert ra == rb, vid
        for f in ra.get("audio_files", []):
            assert (a / f).read_bytes() == (b / f).read_bytes(), f
        if ra.get("video_file"):
            fa, fb = np.load(a / ra["video_file"]), np.load(b / ra["video_file"])
            assert fa.dtype == fb.dtype == np.float32 and fa.shape == fb.shape
            assert np.abs(fa - fb).max() <= 1e-6, vid
    files = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file())
    assert files(a) == files(b)  # no leftovers, no extra files


# CPU actors decode their own videos by default; --ray_decode_tasks (the GPU layout) feeds
# them from decode tasks through the object store
LAYOUTS = {"actors_decode": {}, "decode_tasks": {"ray_decode_tasks": True}}


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_ray_engine_equals_local_engine(ray_address, prepared, corpus, tmp_path, layout):
    """The whole corpus (kept, long scene, too short, no audio, truncated, empty)."""
    summary = prepare_videos([corpus["dir"]], tmp_path / "ray", on_ray(prepared["cfg"], **LAYOUTS[layout]),
                             progress=False)
    assert summary["counts"] == {"kept": 3, "dropped": 2, "failed": 3}
    assert (tmp_path / "ray" / "manifest.jsonl").read_text().count("\n") == 8
    local = tmp_path / "local"  # the session's local run, before other tests rerun into it
    shutil.copytree(prepared["out"], local)
    _assert_same_dataset(tmp_path / "ray", local)


@pytest.mark.slow
def test_rerun_with_either_engine_skips_finished_retries_failed(ray_address, prepared, corpus,
                                                                tmp_path):
    out = tmp_path / "out"
    shutil.copytree(prepared["out"], out)  # made by the local engine
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.suffix != ".jsonl"}
    s = prepare_videos([corpus["dir"]], out, on_ray(prepared["cfg"]), progress=False)
    assert s["skipped_done"] == 5 and s["counts"] == {"failed": 3}
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.suffix != ".jsonl"}
    assert after == before
    s = prepare_videos([corpus["dir"]], out, prepared["cfg"], progress=False)  # and back
    assert s["skipped_done"] == 5 and s["counts"] == {"failed": 3}


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_real_media_through_ray_equals_local(ray_address, real_media, tiny_clip_dir, tmp_path,
                                              layout):
    """Real recordings (the 720p H.264 trailer whose MP3 track stops early, the 5.3 s 5.1 AAC
    film, kept shorter): the same rows, byte-identical WAVs and features as the local engine
    with a decoding worker, in both layouts."""
    videos = tmp_path / "in"
    videos.mkdir()
    for name in ("trailer_bbb.mp4", "bigbuckbunny.mp4"):
        (videos / name).write_bytes((real_media / name).read_bytes())  # links out of the folder are not followed
    cfg = load_config("prepare", None, [
        "--window_seconds", "12", "--segment_seconds", "3", "--n_segments", "4",
        "--max_scene_seconds", "30", "--encoder_batch_size", "16", "--workers", "1",
        "--too_short_rule", "keep_shorter", "--frame_encoder_path", str(tiny_clip_dir)])
    s = prepare_videos([videos], tmp_path / "ray", on_ray(cfg, **LAYOUTS[layout]), progress=False)
    assert s["counts"] == {"kept": 2}
    prepare_videos([videos], tmp_path / "local", cfg, progress=False)
    _assert_same_dataset(tmp_path / "ray", tmp_path / "local")


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_killed_worker_gives_failed_row_and_rest_completes(ray_address, corpus, tiny_clip_dir,
                                                          small, tmp_path, monkeypatch, layout):
    """v1's decoding calls os._exit: in a decode task's worker, or in the actor that decodes
    it (which restarts, retries v1 once, dies again, and goes on with the others)."""
    videos = copy_good_videos(corpus, tmp_path / "in", 3)
    cfg = _cfg(small, tiny_clip_dir)
    patch_decoding(monkeypatch, WorkerDies("v1"), in_actors=layout == "actors_decode")
    s = prepare_videos([videos], tmp_path / "out", on_ray(cfg, **LAYOUTS[layout]), progress=False)
    rows = read_manifest(tmp_path / "out")
    assert (rows["v1"]["status"], rows["v1"]["reason"]) == ("failed", "worker_crashed")
    assert "died" in rows["v1"]["error"]
    assert s["counts"] == {"kept": 2, "failed": 1, "dropped": 1}
    assert not (tmp_path / "out" / "video" / "v1.npy").exists()
    monkeypatch.undo()
    s = prepare_videos([videos], tmp_path / "out", on_ray(cfg), progress=False)
    assert s["skipped_done"] == 3 and s["counts"] == {"kept": 1}  # the failed one is retried
    prepare_videos([videos], tmp_path / "clean", cfg, progress=False)
    _assert_same_dataset(tmp_path / "out", tmp_path / "clean")


@pytest.mark.slow
def test_killed_driver_resumes_to_same_outputs(ray_address, corpus, tiny_clip_dir, small, tmp_path,
                                               capfd):
    """Killed midway, the CLI rerun (with the driver's progress bar) resumes it."""
    from vcmr.cli import main
    videos = copy_good_videos(corpus, tmp_path / "in", 4)
    out = tmp_path / "killed"
    args = ["prepare", str(videos), "--out", str(out), "--no-progress", *small,
            "--frame_encoder_path", str(tiny_clip_dir), "--engine", "ray",
            "--ray_address", ray_address]
    n_done = kill_after_first_row(args, out, timeout=180)
    assert 1 <= n_done < 5, "the run was not interrupted midway"
    capfd.readouterr()
    assert main([a for a in args if a != "--no-progress"]) == 0
    shown = capfd.readouterr()
    assert f"{n_done} already done" in shown.out
    # the driver's bar: its count and the outcome counters (not its rate or ETA: tqdm prints
    # those in units and forms that depend on the machine's speed)
    assert re.search(r"\b\d+/\d+\b", shown.err)
    assert re.search(r"dropped=\d+, failed=0, kept=\d+", shown.err)
    prepare_videos([videos], tmp_path / "clean", _cfg(small, tiny_clip_dir), progress=False)
    _assert_same_dataset(out, tmp_path / "clean")


@pytest.mark.slow
def test_bad_encoder_and_pool_are_clear_errors(ray_address, corpus, small, tmp_path):
    cfg = load_config("prepare", None, small + ["--frame_encoder_path", str(tmp_path / "nope")])
    with pytest.raises(VcmrError, match="nope"):
        prepare_videos([corpus["dir"] / "good.mp4"], tmp_path / "o", on_ray(cfg), progress=False)
    with pytest.raises(VcmrError, match="leave no CPU for decoding.*--ray_actors"):
        prepare_videos([corpus["dir"] / "good.mp4"], tmp_path / "o",
                       on_ray(cfg, ray_actors=2, ray_decode_tasks=True), progress=False)
    with pytest.raises(VcmrError, match="need more CPUs than there are.*--ray_actors"):
        prepare_videos([corpus["dir"] / "good.mp4"], tmp_path / "o", on_ray(cfg, ray_actors=3),
                       progress=False)
    assert not read_manifest(tmp_path / "o")


@pytest.mark.slow
def test_downloads_and_videos_in_flight_stay_bounded(ray_address, corpus, tiny_clip_dir, small,
                                                     tmp_path, monkeypatch):
    """Four videos served over HTTP on this machine (yt-dlp, offline) and one local file:
    download tasks never exceed ``ray_downloads``, videos in flight never exceed
    ``ray_max_in_flight``, and every download is prepared."""
    pytest.importorskip("yt_dlp")
    import functools
    import http.server
    import threading
    from vcmr.prepare.ray_scheduler import Scheduler
    served = copy_good_videos(corpus, tmp_path / "served", 4)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"http://127.0.0.1:{port}/v{i}.mp4\n" for i in range(4)))
    peak = {"downloads": 0, "in_flight": 0}
    submit = Scheduler._submit

    def watched(self):
        submit(self)
        downloads = sum(1 for kind, *_ in self.running.values() if kind == "download")
        peak["downloads"] = max(peak["downloads"], downloads)
        peak["in_flight"] = max(peak["in_flight"], self.in_flight)
    monkeypatch.setattr(Scheduler, "_submit", watched)
    try:
        s = prepare_videos([lst, served / "long.mp4"], tmp_path / "out",
                           on_ray(_cfg(small, tiny_clip_dir), ray_downloads=2, ray_max_in_flight=3),
                           progress=False)
    finally:
        server.shutdown()
    assert s["counts"] == {"kept": 4, "dropped": 1}
    assert peak == {"downloads": 2, "in_flight": 3}


@pytest.mark.slow
def test_full_disk_in_a_decode_task_stops_cleanly_and_resumes(ray_address, corpus, tiny_clip_dir,
                                                              small, tmp_path, monkeypatch, capfd):
    """ENOSPC while v2's WAVs are written in a Ray worker (the CPU actor that decodes it, the
    CLI's default here): the run stops with the local engine's message, finished videos
    stay, nothing of v2 is left, and the same command resumes to the local engine's dataset."""
    from vcmr.cli import main
    videos = copy_good_videos(corpus, tmp_path / "in", 4)
    out = tmp_path / "out"
    args = ["prepare", str(videos), "--out", str(out), "--no-progress", *small,
            "--frame_encoder_path", str(tiny_clip_dir), "--engine", "ray", "--ray-address", ray_address]
    patch_decoding(monkeypatch, DiskFull("v2", out), in_actors=True)
    assert main(args) == 1
    err = capfd.readouterr().err
    assert "no space left on the disk" in err and "run the same command again" in err, err
    rows = read_manifest(out)
    assert "v2" not in rows and all(r["status"] != "failed" for r in rows.values())
    assert not [p for p in out.rglob("*") if p.is_file() and (p.name.startswith("v2") or p.suffix == ".tmp")]
    monkeypatch.undo()
    assert main(args) == 0
    assert f"{len(rows)} already done" in capfd.readouterr().out
    prepare_videos([videos], tmp_path / "clean", _cfg(small, tiny_clip_dir), progress=False)
    _assert_same_dataset(out, tmp_path / "clean")


def test_crashed_tasks_are_named_by_cause():
    """What the driver records for a task that died: out of memory (Ray's memory monitor
    killed it) or a crashed worker; a full disk is not a row but stops the run."""
    ray = pytest.importorskip("ray")
    from vcmr.prepare.job import OutputWriteError
    from vcmr.prepare.ray_scheduler import crash_reason
    oom = ray.exceptions.OutOfMemoryError("Task was killed due to the node running low on memory.")
    assert crash_reason(ray, oom)[0] == "out_of_memory"
    assert crash_reason(ray, ray.exceptions.WorkerCrashedError())[0] == "worker_crashed"
    full = ray.exceptions.RayTaskError("decode_task", "tb", OutputWriteError("cannot write (no space)"))
    with pytest.raises(OutputWriteError, match="no space"):
        crash_reason(ray, full)


@pytest.mark.slow
def test_cpu_encoder_actor_uses_its_nodes_cores_unless_told(ray_address, small, tiny_clip_dir):
    """Default: the node's cores (the actor decodes its own videos between encoder batches,
    as the local engine does); --ray_encoder_threads fixes the count."""
    import ray
    from vcmr.prepare.ray_engine import start_pool
    cfg = _cfg(small, tiny_clip_dir)
    for keys, threads in (({}, os.cpu_count()), ({"ray_encoder_threads": 1}, 1)):
        actors, info = start_pool(ray, on_ray(cfg, **keys))
        try:
            assert (len(actors), info["device"], info["threads"]) == (1, "cpu", threads)
            assert info["decode_tasks"] is False  # CPU actors decode their own videos
        finally:
            for a in actors:
                ray.kill(a)


def test_engine_ray_without_ray_names_the_extra(corpus, small, tmp_path):
    """Ray blocked from import (a meta-path finder), as on an install without the extra."""
    code = textwrap.dedent(f"""
        import sys
        class NoRay:
            def find_spec(self, name, path=None, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ImportError("No module named 'ray' (blocked)")
        sys.meta_path.insert(0, NoRay())
        from vcmr.cli import main
        code = main(sys.argv[1:])
        assert "ray" not in sys.modules
        sys.exit(code)
    """)
    args = ["prepare", str(corpus["dir"] / "good.mp4"), "--out", str(tmp_path / "o"),
            "--engine", "ray", *small]
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 1, res.stderr[-2000:]
    assert 'pip install "vcmr[ray]"' in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


def test_shard_from_slurm_array_environment():
    assert shard_from_env({}) is None
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4"}) == (2, 4)
    assert shard_from_env({"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "3",
                           "SLURM_ARRAY_TASK_MIN": "1"}) == (2, 3)
    for bad in ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "4"},
                {"SLURM_ARRAY_TASK_ID": "x", "SLURM_ARRAY_TASK_COUNT": "4"}):
        with pytest.raises(VcmrError, match="--shard"):
            shard_from_env(bad)


def test_cli_takes_shard_from_slurm(corpus, tiny_clip_dir, small, tmp_path, monkeypatch, capsys):
    """Two array tasks into two folders = the two --shard runs; --shard given wins."""
    from vcmr.cli import main
    videos = copy_good_videos(corpus, tmp_path / "in", 2)
    ids = []
    for task in ("1", "2"):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", task)
        monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
        monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "1")
        out = tmp_path / f"task{task}"
        assert main(["prepare", str(videos), "--out", str(out), "--no-progress", *small,
                     "--frame_encoder_path", str(tiny_clip_dir)]) == 0
        assert f"--shard {int(task) - 1}/2" in capsys.readouterr().err
        ids.append(set(read_manifest(out)))
    assert not ids[0] & ids[1] and ids[0] | ids[1] == {"v0", "v1", "long"}
    from vcmr.prepare.download import collect_inputs, shard_items
    items = collect_inputs([videos])
    assert ids == [{it.id for it in shard_items(items, i, 2)} for i in range(2)]
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    assert main(["prepare", str(videos), "--out", str(tmp_path / "given"), "--no-progress",
                 *small, "--frame_encoder_path", str(tiny_clip_dir), "--shard", "0/1"]) == 0
    assert len(read_manifest(tmp_path / "given")) == 3


@pytest.mark.slow
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_killed_encoder_actor_restarts(ray_address, corpus, tiny_clip_dir, small, tmp_path,
                                       monkeypatch, layout):
    """The actor dies while finishing v1 (twice: the retry too): v1 is failed, the actor is
    restarted and the videos queued behind it complete."""
    videos = copy_good_videos(corpus, tmp_path / "in", 4)
    patch_encoding(monkeypatch, WorkerDies("v1"))
    s = prepare_videos([videos], tmp_path / "out", on_ray(_cfg(small, tiny_clip_dir), **LAYOUTS[layout]),
                       progress=False)
    rows = read_manifest(tmp_path / "out")
    assert (rows["v1"]["status"], rows["v1"]["reason"]) == ("failed", "worker_crashed")
    assert s["counts"] == {"kept": 3, "failed": 1, "dropped": 1}
    assert not (tmp_path / "out" / "video" / "v1.npy").exists()
    assert not (tmp_path / "out" / "audio" / "v1").exists()  # its WAVs were written: removed
    assert (tmp_path / "out" / "video" / "v3.npy").is_file()


def test_ray_options_without_engine_ray_are_refused(corpus, tmp_path, capsys):
    from vcmr.cli import main
    assert main(["prepare", str(corpus["dir"] / "good.mp4"), "--out", str(tmp_path / "o"),
                 "--ray-address", "auto", "--ray_actors", "2", "--ray-encoder-threads", "2",
                 "--ray-decode-tasks"]) == 1
    assert ("ray_address, ray_actors, ray_encoder_threads, ray_decode_tasks work only with "
            "engine ray: add --engine ray" in capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_engine_and_ray_keys_from_yaml_and_both_flag_spellings(tmp_path, monkeypatch, capsys):
    """The Ray settings are PrepareConfig keys: read from the YAML file, overridden by flags
    in either spelling (underscores or dashes), checked like every other key."""
    from vcmr.cli import main
    from vcmr.commands import prepare as command
    runs = []

    def record(inputs, out, cfg, **kw):
        runs.append(cfg)
        return {"inputs": 0, "counts": {}, "reasons": {}, "skipped_done": 0, "seconds": 0}
    monkeypatch.setattr(command, "prepare_videos", record)
    (tmp_path / "ray.yaml").write_text("engine: ray\nray_actors: 3\nray_downloads: 2\n")
    base = ["prepare", "v.mp4", "--out", str(tmp_path / "o")]
    assert main([*base, "--config", str(tmp_path / "ray.yaml"), "--ray-actors", "2",
                 "--ray_num_cpus", "4", "--ray-decode-tasks"]) == 0
    assert main([*base, "--engine=ray", "--ray-address", "auto", "--ray_decode_tasks", "false",
                 "--ray-max-in-flight", "5", "--ray_encoder_cpus", "0.5"]) == 0
    got = [(c.engine, c.ray_actors, c.ray_num_cpus, c.ray_downloads, c.ray_decode_tasks,
            c.ray_address, c.ray_max_in_flight, c.ray_encoder_cpus) for c in runs]
    assert got == [("ray", 2, 4, 2, True, None, None, 1.0), ("ray", None, None, 4, False, "auto", 5, 0.5)]
    for bad, key in ((["--ray_downloads", "0"], "ray_downloads"),
                     (["--ray-decode-cpus", "0"], "ray_decode_cpus"), (["--engine", "slurm"], "engine")):
        assert main([*base, "--engine", "ray", *bad]) == 1
        assert f"'{key}'" in capsys.readouterr().err
    assert len(runs) == 2
