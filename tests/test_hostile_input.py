"""Hostile input, as a user meets it: the `vcmr` command run as a subprocess.

Every case asserts the exit status, a message that names the thing and the fix, no traceback,
no temporary file left behind and nothing lost. Permission cases need a process that file
permissions apply to: as root they run the CLI under ``setpriv`` with the capabilities that
bypass permissions dropped (real kernel checks, no mocks), and skip if that is impossible.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_OVERRIDES

from embed_helpers import SR, music, stage1_checkpoint
from vcmr.audio.io import write_wav
from vcmr.cli import main

ODD = b"caf\xe9 \xff.wav"  # Latin-1 bytes: not valid UTF-8
BASE = ["--progress_bar", "false", "--workers", "0", "--accelerator", "cpu", "--devices", "1"]
TRAIN = BASE + ["--max_steps", "1", "--m_epochs", "1", "--batch_size", "4", *TINY_OVERRIDES]


def _drop_root() -> list[str]:
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: file permissions cannot be exercised")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]


def vcmr(*args, permissions=False, env=None, timeout=300) -> subprocess.CompletedProcess:
    """Run the CLI as a user would; ``permissions``: file permissions apply even as root."""
    cmd = (_drop_root() if permissions else []) + [sys.executable, "-m", "vcmr.cli", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, errors="backslashreplace",
                          env={**os.environ, **(env or {})}, timeout=timeout)


def refused(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1, every needle in the message, no traceback; returns stderr."""
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out, out
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    return r.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*")}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile_model")
    ckpt = stage1_checkpoint(root)
    out = root / "model.safetensors"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    return ckpt, out


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    """Two good files, one with a non-UTF-8 name, and one broken file."""
    root = tmp_path_factory.mktemp("hostile_songs")
    write_wav(root / "a.wav", music(0.5, SR, seed=1), SR)
    write_wav(os.fsdecode(os.fsencode(root) + b"/" + ODD), music(0.4, SR, seed=2), SR)
    (root / "broken.wav").write_bytes(b"RIFF....not audio")
    return root


# --- non-UTF-8 file names -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "parquet", "npz"])
def test_embed_keeps_non_utf8_names_losslessly(model, songs, tmp_path, fmt):
    out = tmp_path / os.fsdecode(b"emb\xe9." + fmt.encode())  # the output name is odd too
    r = vcmr("embed", songs, "--ckpt", model[1], "--out", out, "--song-level", "--quiet")
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "broken.wav" in r.stderr and "2 file(s)" in r.stdout
    odd = os.fsencode(songs) + b"/" + ODD
    if fmt == "npz":
        names = [os.fsencode(p) for p in np.load(out)["path"]]  # Python's own str form
    elif fmt == "parquet":
        import pyarrow.parquet as pq
        with open(out, "rb") as f:
            t = pq.read_table(f).to_pydict()
        names = t["path_bytes"]
        assert any("\\xe9" in p for p in t["path"])  # readable, valid UTF-8
    else:
        import csv
        with open(out, encoding="utf-8") as f:
            names = [bytes.fromhex(row["path_bytes"]) for row in csv.DictReader(f)]
    assert odd in names and os.fsencode(songs / "a.wav") in names
    assert listing(tmp_path) == {out.name}


def test_pretrain_music_with_a_non_utf8_name(tmp_path):
    data = tmp_path / "audio"
    for i in range(5):
        write_wav(data / f"s{i}.wav", music(1.0, SR, seed=i), SR)
    write_wav(os.fsdecode(os.fsencode(data) + b"/" + ODD), music(1.0, SR, seed=9), SR)
    r = vcmr("train", "music", "--dataset_dir", data, "--log_dir", tmp_path / "runs", *TRAIN)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert (next((tmp_path / "runs").rglob("last.ckpt"))).is_file()


# --- output paths checked before the work ---------------------------------------------------

def test_embed_out_in_a_read_only_folder_fails_before_embedding(model, songs, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = vcmr("embed", songs, "--ckpt", model[1], "--out", ro / "emb.npz", "--quiet", permissions=True)
    finally:
        ro.chmod(0o755)
    err = refused(r, "--out", str(ro), "permission denied", "choose a folder you can write to")
    assert "skipped" not in err  # refused before any file was read
    assert listing(ro) == set()


def test_embed_out_below_a_file(model, songs, tmp_path):
    (tmp_path / "afile").write_text("x")
    r = vcmr("embed", songs, "--ckpt", model[1], "--out", tmp_path / "afile" / "emb.npz")
    refused(r, "afile", "is a file, not a folder")


def test_embed_out_existing_folder_leaves_nothing_behind(model, songs, tmp_path):
    target = tmp_path / "existing"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    r = vcmr("embed", songs, "--ckpt", model[1], "--out", f"{target}/", "--format", "npz")
    refused(r, "is a folder", "give a file name inside it")
    assert listing(tmp_path) == {"existing", "existing/keep.txt"}


def test_embed_out_is_an_input(model, songs, tmp_path):
    before = digest(songs / "a.wav")
    r = vcmr("embed", songs / "a.wav", "--ckpt", model[1], "--out", songs / "a.wav", "--format", "npz")
    refused(r, "is also an input", "Give another output path")
    assert digest(songs / "a.wav") == before


def test_embed_device_without_gpu(model, songs, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    r = vcmr("embed", songs / "a.wav", "--ckpt", model[1], "--out", tmp_path / "e.npz", "--device", "cuda")
    refused(r, "--device cuda", "no usable CUDA GPU", "--device cpu")
    assert listing(tmp_path) == set()


@pytest.mark.parametrize("how", ["same", "symlink"])
def test_export_never_overwrites_its_checkpoint(model, tmp_path, how):
    ckpt = tmp_path / "train.ckpt"
    shutil.copy(model[0], ckpt)
    before = digest(ckpt)
    out = ckpt
    if how == "symlink":
        out = tmp_path / "model.safetensors"
        out.symlink_to(ckpt)
    names = set(os.listdir(tmp_path))
    r = vcmr("export", ckpt, "--out", out)
    refused(r, "is also an input", "destroy the input", "Give another output path")
    assert digest(ckpt) == before and set(os.listdir(tmp_path)) == names


def test_export_refuses_a_hard_link_to_its_checkpoint(model, tmp_path, capsys):
    ckpt = tmp_path / "train.ckpt"
    shutil.copy(model[0], ckpt)
    os.link(ckpt, tmp_path / "linked.safetensors")
    before = digest(ckpt)
    assert main(["export", str(ckpt), "--out", str(tmp_path / "linked.safetensors")]) == 1
    assert "is also an input" in capsys.readouterr().err and digest(ckpt) == before


def test_training_log_dir_read_only(tmp_path, synth_audio_dir):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = vcmr("train", "music", "--dataset_dir", synth_audio_dir, "--log_dir", ro / "runs", *TRAIN,
                 permissions=True)
    finally:
        ro.chmod(0o755)
    refused(r, "log_dir", "permission denied")
    assert listing(ro) == set()


@pytest.mark.parametrize("command,key", [
    ("train music", "--log_dir"), ("train video", "--log_dir"), ("train tagging", "--log_dir"),
    ("probe", "--results_dir"), ("probe", "--cache_dir"), ("evaluate", "--results_dir"),
    ("cache-audio", "--cache_dir"), ("demo", "--out"), ("compare", "--out")])
def test_every_command_refuses_a_file_as_output_folder(tmp_path, capsys, command, key):
    """In-process (fast): the check runs before any data is read, so no data is needed."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    args = [*command.split(), key, str(blocker)]
    if command in ("train tagging", "probe", "evaluate", "cache-audio"):
        args += ["--dataset", "magnatagatune", "--dataset_dir", str(tmp_path / "data")]
    if command == "evaluate":
        args += ["--ckpt", str(tmp_path / "x.ckpt")]
    if command == "compare":
        args += [str(tmp_path / "a"), str(tmp_path / "b")]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "blocker" in err and "is a file, not a folder" in err
    assert blocker.read_text() == "not a folder"


def test_stage2_output_checkpoint_is_its_input(tmp_path, capsys, model):
    """With a fixed experiment_version, this run's best.ckpt must not be the stage-1 input."""
    ckpt_dir = tmp_path / "runs" / "x" / "v0" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    shutil.copy(model[0], ckpt_dir / "best.ckpt")
    before = digest(ckpt_dir / "best.ckpt")
    assert main(["train", "video", "--log_dir", str(tmp_path / "runs"), "--experiment_name", "x",
                 "--experiment_version", "v0", "--audio_encoder_ckpt_path", str(ckpt_dir / "best.ckpt"),
                 "--dataset_dir", str(tmp_path)]) == 1
    assert "audio_encoder_ckpt_path" in capsys.readouterr().err
    assert digest(ckpt_dir / "best.ckpt") == before


# --- unreadable and odd inputs --------------------------------------------------------------

def test_unreadable_dataset_dir_is_reported_as_such(tmp_path, model):
    locked = tmp_path / "locked"
    write_wav(locked / "a.wav", music(1.0, SR), SR)
    locked.chmod(0o000)
    try:
        r = vcmr("train", "music", "--dataset_dir", locked, "--log_dir", tmp_path / "runs", *TRAIN,
                 permissions=True)
        e = vcmr("embed", locked, "--ckpt", model[1], "--out", tmp_path / "e.npz", permissions=True)
    finally:
        locked.chmod(0o755)
    refused(r, "cannot read folder", str(locked), "Permission denied", "chmod")
    assert "no audio files" not in r.stderr
    refused(e, "cannot read folder", "Permission denied", "nothing written")


def test_retrieve_audio_is_a_folder(tmp_path):
    (tmp_path / "x.mp4").mkdir()
    r = vcmr("retrieve", "--ckpt", "model.safetensors", "--dataset_dir", tmp_path, "--audio", tmp_path / "x.mp4")
    refused(r, "x.mp4", "is a folder", "give one audio or video file")


def test_stage1_with_one_usable_file_is_refused(tmp_path):
    data = tmp_path / "one"
    write_wav(data / "only.wav", music(1.0, SR), SR)
    r = vcmr("train", "music", "--dataset_dir", data, "--log_dir", tmp_path / "runs", *TRAIN)
    refused(r, "usable training file(s)", "at least 2 training files", "add audio files")
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_stage1_where_every_batch_is_skipped_fails(tmp_path):
    """One readable file among broken ones: every batch has < 2 items; the run must not pass."""
    data = tmp_path / "mostly_broken"
    write_wav(data / "good.wav", music(1.0, SR), SR)
    for i in range(5):
        (data / f"bad{i}.wav").write_bytes(b"RIFF" + bytes(40))
    r = vcmr("train", "music", "--dataset_dir", data, "--log_dir", tmp_path / "runs", *BASE,
             "--max_steps", "1", "--m_epochs", "1", "--batch_size", "16", *TINY_OVERRIDES)
    refused(r, "no training step ran", "fewer than 2 readable audio files", "is untrained")


# --- resume files -----------------------------------------------------------------------------

class Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_from_a_non_checkpoint(tmp_path, synth_audio_dir):
    junk = tmp_path / "notes.ckpt"
    junk.write_text("this is not a checkpoint\n")
    r = vcmr("train", "music", "--dataset_dir", synth_audio_dir, "--log_dir", tmp_path / "runs",
             "--ckpt_path", junk, *TRAIN)
    refused(r, "ckpt_path", "notes.ckpt", "cannot be read as a checkpoint", "last.ckpt")


def test_malicious_resume_file_never_runs(tmp_path, synth_audio_dir):
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"stage": "music", "config": {}},
                "optimizer_states": [], "loops": {}, "epoch": 0, "global_step": 0,
                "x": Payload(marker)}, evil)
    r = vcmr("train", "music", "--dataset_dir", synth_audio_dir, "--log_dir", tmp_path / "runs",
             "--ckpt_path", evil, *TRAIN, env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    refused(r, "ckpt_path", "evil.ckpt", "cannot be read as a checkpoint")
    assert not marker.exists()


def test_lightning_resume_load_is_weights_only(tmp_path, synth_audio_dir, model):
    """Even a file that passes vcmr's check is loaded weights-only by Lightning: swap the
    validated checkpoint for a payload between the check and the fit."""
    from vcmr.config import load_config
    from vcmr.train import trainer as trainer_lib
    from vcmr.train.music import MusicModule, make_loaders
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.ckpt"
    ckpt = torch.load(model[0], weights_only=True)
    ckpt["x"] = Payload(marker)
    torch.save(ckpt, evil)
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        cfg = load_config("music", None, TRAIN + [
            "--dataset_dir", str(synth_audio_dir), "--log_dir", str(tmp_path / "runs")])
        trainer = trainer_lib.build_trainer(cfg, monitor="Valid/loss")
        with pytest.raises(Exception):
            trainer.fit(MusicModule(cfg), *make_loaders(cfg), ckpt_path=str(evil), weights_only=True)
    finally:
        del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
    assert not marker.exists()


def test_resume_with_another_stage_checkpoint(tmp_path, capsys, model):
    from vcmr.errors import CheckpointError
    from vcmr.io.checkpoint import check_resume_checkpoint
    with pytest.raises(CheckpointError, match="stage 1 .* resuming stage 2 .* same stage"):
        check_resume_checkpoint(model[0], "video")


# --- numbers that would silently corrupt training ---------------------------------------------

@pytest.mark.slow
def test_diverging_training_stops_with_a_clear_error(tmp_path, synth_audio_dir):
    """lr 1e30 blows the weights up; the run must fail naming the step, never save NaN weights."""
    r = vcmr("train", "music", "--dataset_dir", synth_audio_dir, "--log_dir", tmp_path / "runs",
             *BASE, "--learning_rate", "1e30", "--max_steps", "6", "--m_epochs", "6",
             "--batch_size", "4", *TINY_OVERRIDES)
    refused(r, "at step", "training stopped before this update", "Lower learning_rate")
    for ckpt in (tmp_path / "runs").rglob("*.ckpt"):
        sd = torch.load(ckpt, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point()), ckpt


def test_stage2_with_a_nan_feature_file_trains_on_the_others(tmp_path, stage1_ckpt):
    """One prepared video with NaN features: warned by name, skipped, finite checkpoint, exit 0."""
    from prepared_layout import write_prepared

    def features(i, n):
        f = np.random.default_rng(i).standard_normal((n, 8)).astype(np.float32)
        if i == 3:
            f[1, :] = np.nan
        return f
    data = write_prepared(tmp_path / "av", n_videos=6, n_segments=2, segment_seconds=2, features=features)
    r = vcmr("train", "video", "--dataset_dir", data, "--audio_encoder_ckpt_path", stage1_ckpt,
             "--log_dir", tmp_path / "runs", "--valid_fraction", "0.3", *TRAIN)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "skipping video 'vid03'" in r.stderr and "NaN or infinite values" in r.stderr
    ckpts = list((tmp_path / "runs").rglob("*.ckpt"))
    assert ckpts
    for ckpt in ckpts:
        sd = torch.load(ckpt, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point()), ckpt


def test_unreadable_prepared_dataset_is_not_called_missing(tmp_path, stage1_ckpt):
    from prepared_layout import write_prepared
    data = write_prepared(tmp_path / "av", n_videos=2, n_segments=2, segment_seconds=2)
    data.chmod(0o000)
    try:
        r = vcmr("train", "video", "--dataset_dir", data, "--audio_encoder_ckpt_path", stage1_ckpt,
                 "--log_dir", tmp_path / "runs", *TRAIN, permissions=True)
    finally:
        data.chmod(0o755)
    refused(r, "cannot read folder", "Permission denied", "chmod")
    assert "manifest.jsonl is missing" not in r.stderr
