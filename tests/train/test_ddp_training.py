"""The three training stages as users run them: the `vcmr` command on 2 CPU processes (DDP over
gloo) with 2 persistent data-loader workers each.

Each run goes through tests/ddp_helpers.py, which adds a recording callback to the real
command; Lightning starts the second process by running the same command line again. A hang
(one process waiting in a collective operation for another) fails the test at its timeout.

Validation numbers of the 2-process run are compared with a 1-process validation of the same
checkpoint on the same global batch (per-process batch x 2). They should agree because, in
evaluation mode, BatchNorm uses running statistics (each clip's embedding does not depend on
its batch), stage 1's validation views are seeded per file, the losses see the global batch
through their all-gather, and the metrics are computed on the gathered validation set. They
differ only by float32 rounding (convolutions over batches of different sizes, reductions in
another order): tolerance 1e-5 relative.
"""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, TESTS, write_music_clips

pytestmark = pytest.mark.slow

DDP = ["--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--workers", "2",
       "--progress_bar", "false", "--log_freq", "1"]
TIMEOUT_S = 300  # a run takes 30-90 s on 2 loaded cores; a hang fails here instead of blocking CI
REL = 1e-5


def run_vcmr(out: Path, args: list[str], sigterm_at_step: int | None = None):
    """Run `vcmr ARGS` through the recording helper; kill the whole process group on timeout."""
    cmd = [sys.executable, str(TESTS / "ddp_helpers.py"), str(out)]
    cmd += ["--sigterm_at_step", str(sigterm_at_step)] if sigterm_at_step is not None else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen(cmd + ["--", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=env, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"`vcmr {' '.join(args[:1])}` on 2 processes did not finish in {TIMEOUT_S} s "
                    f"(hang); its output ended with:\n{(stdout + stderr)[-3000:]}")
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1) if (out / f"rank{r}.json").is_file()]
    return proc.returncode, stdout, stderr, ranks


def one_set_of_outputs(log_root: Path, experiment: str, version: str, n_runs: int = 2):
    """One log folder, one pair of checkpoints, one TensorBoard file per run (rank 0 only)."""
    runs = sorted(p.name for p in (log_root / experiment).iterdir() if p.is_dir())
    assert runs == [version], runs
    ckpts = sorted(p.name for p in (log_root / experiment / version / "checkpoints").iterdir())
    assert set(ckpts) <= {"best.ckpt", "last.ckpt"} and "last.ckpt" in ckpts, ckpts
    assert len(list((log_root / experiment / version).glob("events.out.tfevents.*"))) == n_runs


def one_epoch_then_resume(tmp_path: Path, make_args, logs: Path, experiment: str, version: str):
    """Two processes train one epoch, then a second run resumes from last.ckpt to epoch 2;
    both must finish, with one set of outputs. Returns (ranks, resumed ranks, last.ckpt)."""
    rc, out, err, ranks = run_vcmr(tmp_path / "a", make_args("--m_epochs", "1",
                                                             "--experiment_version", version))
    assert rc == 0, err[-3000:]
    assert out.count("last checkpoint:") == 1, out
    last = logs / experiment / version / "checkpoints" / "last.ckpt"
    rc, out, err, ranks_b = run_vcmr(tmp_path / "b", make_args("--m_epochs", "2", "--experiment_version",
                                                               version, "--ckpt_path", str(last)))
    assert rc == 0, err[-3000:]
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 1
    one_set_of_outputs(logs, experiment, version)
    return ranks, ranks_b, last


def validate_one_process(module, loader) -> dict:
    import pytorch_lightning as pl
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    return {k: float(v) for k, v in trainer.validate(module, loader, verbose=False)[0].items()}


def assert_same_numbers(two_proc: dict, one_proc: dict, keys):
    print({k: (two_proc[k], one_proc[k]) for k in keys})
    for k in keys:
        assert two_proc[k] == pytest.approx(one_proc[k], rel=REL, abs=1e-6), (k, two_proc[k], one_proc[k])


def items_by_epoch(ranks) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for rank in ranks:
        for row in rank["rows"]:
            out.setdefault(row["epoch"], {}).update(row.get("items", {}))
    return out


# ------------------------------------------------------------------------------------ stage 1
@pytest.fixture(scope="module")
def audio_with_bad_files(tmp_path_factory):
    """24 one-second clips; 4 training files unreadable, so some process gets < 2 readable."""
    from vcmr.data.audio_folder import list_split
    root = write_music_clips(tmp_path_factory.mktemp("ddp_audio"), 24, tag_seed=1)
    valid = list_split(root, "valid", 0.2)
    assert len(valid) == 4  # even: no padding duplicates in the distributed validation sampler
    for f in list_split(root, "train", 0.2)[::5]:
        f.write_bytes(b"not audio at all" * 64)
    return root


def mus_args(audio_dir, log_dir, *extra):
    return ["train", "music", "--dataset_dir", str(audio_dir), "--config", str(ROOT / "config" / "tiny.yaml"),
            "--log_dir", str(log_dir), *DDP, "--batch_size", "2", "--valid_fraction", "0.2",
            "--excerpt_seconds", "0", "--learning_rate", "1e-3", *extra]


def test_stage1_two_processes(audio_with_bad_files, tmp_path):
    from vcmr.config import load_config
    from vcmr.data.audio_folder import AudioFolder, read_excerpt
    from vcmr.train.music import MusicModule, make_loaders
    logs = tmp_path / "runs"
    # Run A: stopped by SIGTERM in the middle of epoch 1 (5 steps per epoch and process).
    rc, out, err, ranks = run_vcmr(tmp_path / "a", mus_args(audio_with_bad_files, logs, "--m_epochs", "2",
                                                            "--experiment_version", "a"), sigterm_at_step=7)
    assert rc == 1 and "stopped by SIGTERM" in err, err[-3000:]
    assert [r["world"] for r in ranks] == [2, 2]
    last = logs / "music" / "a" / "checkpoints" / "last.ckpt"
    state = torch.load(last, map_location="cpu", weights_only=True)
    assert state["global_step"] >= 7 and state["epoch"] == 1  # saved mid-epoch, when stopped

    # No hang: a step where one process had < 2 readable files was skipped by both.
    per_rank = [r["rows"] for r in ranks]
    n_common = min(map(len, per_rank))
    paired = [(per_rank[0][i], per_rank[1][i]) for i in range(n_common)]
    small = [(a, b) for a, b in paired if min(a["n"], b["n"]) < 2]
    assert small, "the data should give one process a batch with < 2 readable files"
    assert all(not a["trained"] and not b["trained"] for a, b in small)
    assert any(a["trained"] and b["trained"] for a, b in paired)

    # Per-rank augmentations: the two processes drew different effects at the same position.
    aug0, aug1 = ranks[0]["aug"], ranks[1]["aug"]
    assert aug0["gain_db"] != aug1["gain_db"] and aug0["filter_cutoff_hz"] != aug1["filter_cutoff_hz"]

    # Fresh excerpts every epoch in persistent workers, equal to (seed, epoch, index) reads.
    cfg = load_config("music", str(ROOT / "config" / "tiny.yaml"), ["--dataset_dir", str(audio_with_bad_files),
                                                                   "--valid_fraction", "0.2", "--excerpt_seconds", "0"])
    train = AudioFolder(audio_with_bad_files, "train", 16000, 2 * cfg.audio_length, 0.2, seed=cfg.seed)
    by_epoch = items_by_epoch(ranks)
    common = sorted(set(by_epoch[0]) & set(by_epoch[1]))
    assert len(common) >= 4
    assert all(by_epoch[0][i] != by_epoch[1][i] for i in common)
    for epoch in (0, 1):
        for i in common[:4]:
            rng = np.random.default_rng([cfg.seed, epoch, int(i)])
            x = read_excerpt(train.files[int(i)], None, train.excerpt_length, 16000, rng)
            assert by_epoch[epoch][i] == pytest.approx(float(np.abs(x.astype(np.float64)).sum()), rel=1e-6)

    # Run B: resume from last.ckpt, finish epoch 1 (validation at its end), summary printed once.
    rc, out, err, ranks_b = run_vcmr(tmp_path / "b", mus_args(audio_with_bad_files, logs, "--m_epochs", "2",
                                                              "--experiment_version", "a", "--ckpt_path", str(last)))
    assert rc == 0, err[-3000:]
    assert out.count("last checkpoint:") == 1 and out.count("logs:") == 1, out
    resumed = torch.load(last, map_location="cpu", weights_only=True)
    assert resumed["global_step"] > state["global_step"] and resumed["epoch"] == 1
    assert all(row["epoch"] == 1 for r in ranks_b for row in r["rows"])
    one_set_of_outputs(logs, "music", "a")

    # Validation numbers: 2 processes x batch 2 == 1 process x batch 4 on the same checkpoint.
    module = MusicModule.load_from_checkpoint(last, map_location="cpu", weights_only=True)
    one_cfg = load_config("music", str(ROOT / "config" / "tiny.yaml"), [
        "--dataset_dir", str(audio_with_bad_files), "--valid_fraction", "0.2", "--excerpt_seconds", "0",
        "--batch_size", "4", "--workers", "0"])
    one = validate_one_process(module, make_loaders(one_cfg)[1])
    assert_same_numbers(ranks_b[0]["metrics"], one, ["Valid/loss"])


# ------------------------------------------------------------------------------------ stage 2
@pytest.fixture(scope="module")
def prepared_av(tmp_path_factory):
    from prepared_layout import write_prepared
    return write_prepared(tmp_path_factory.mktemp("ddp_av"), n_videos=8, n_segments=2, segment_seconds=2,
                          feature_dim=12)


def vid_args(data, log_dir, *extra):
    return ["train", "video", "--dataset_dir", str(data), "--config", str(ROOT / "config" / "tiny.yaml"),
            "--from_scratch", "true", "--log_dir", str(log_dir), *DDP, "--batch_size", "2",
            "--valid_fraction", "0.3", *extra]


def test_stage2_two_processes(prepared_av, tmp_path):
    from vcmr.config import load_config
    from vcmr.data.audio_visual import AudioVisualDataset
    from vcmr.train.video import VideoModule, make_loaders
    logs = tmp_path / "runs"
    ranks, ranks_b, last = one_epoch_then_resume(
        tmp_path, lambda *extra: vid_args(prepared_av, logs, *extra), logs, "video", "v")
    # fresh crops in epoch 1 (the resumed run), each the (seed, epoch, index) crop
    crops = {0: items_by_epoch(ranks)[0], 1: items_by_epoch(ranks_b)[1]}
    cfg = load_config("video", str(ROOT / "config" / "tiny.yaml"), ["--dataset_dir", str(prepared_av),
                                                                   "--valid_fraction", "0.3", "--batch_size", "4",
                                                                   "--workers", "0"])
    ds = AudioVisualDataset(prepared_av, "train", 16000, cfg.audio_length, 0.3, seed=cfg.seed)
    starts = {e: {i: (setattr(ds, "epoch", e), ds.crop_start(int(i)))[1] for i in crops[e]} for e in (0, 1)}
    moved = [i for i in set(crops[0]) & set(crops[1]) if starts[0][i] != starts[1][i]]
    assert moved and all(crops[0][i] != crops[1][i] for i in moved)
    for e in (0, 1):
        for i in list(crops[e])[:4]:
            ds.epoch = e
            assert crops[e][i] == pytest.approx(float(ds[int(i)][0].double().abs().sum()), rel=1e-6)
    module = VideoModule.load_from_checkpoint(last, map_location="cpu", weights_only=True)
    valid = make_loaders(cfg)[1]
    assert len(valid.dataset) % 2 == 0
    one = validate_one_process(module, valid)
    assert one["Valid/n_pairs"] == ranks_b[0]["metrics"]["Valid/n_pairs"] == len(valid.dataset)
    assert_same_numbers(ranks_b[0]["metrics"], one, ["Valid/loss", "Valid/a2v_R@1", "Valid/v2a_R@5",
                                                     "Valid/a2v_median_rank", "Valid/v2a_median_rank"])


# ------------------------------------------------------------------------------------ stage 3
@pytest.fixture(scope="module")
def mtat(tmp_path_factory):
    from vcmr.demo.synth.formats import write_magnatagatune
    out = tmp_path_factory.mktemp("ddp_mtat")
    rows = write_magnatagatune(out, 24, seed=5, duration=0.4, sample_rate=16000, workers=1)
    assert sum(r["split"] == "valid" for r in rows) % 2 == 0
    return out


def sup_args(data, log_dir, *extra):
    return ["train", "tagging", "--dataset", "magnatagatune", "--dataset_dir", str(data), "--config",
            str(ROOT / "config" / "tiny.yaml"), "--pretrained_ckpt_path", "none", "--log_dir", str(log_dir),
            *DDP, "--batch_size", "3", *extra]


def test_stage3_two_processes(mtat, tmp_path):
    from vcmr.config import load_config
    from vcmr.data.tagging import load_split_from_config
    from vcmr.train.tagging import TaggingModule, make_loaders
    logs = tmp_path / "runs"
    _, ranks_b, last = one_epoch_then_resume(
        tmp_path, lambda *extra: sup_args(mtat, logs, *extra), logs, "tagging", "s")
    ck = torch.load(last, map_location="cpu", weights_only=True)
    module = TaggingModule.load_from_checkpoint(last, map_location="cpu", weights_only=True)
    cfg = load_config("tagging", str(ROOT / "config" / "tiny.yaml"), [
        "--dataset", "magnatagatune", "--dataset_dir", str(mtat), "--batch_size", "6", "--workers", "0"])
    train_split, valid_split = load_split_from_config(cfg, "train"), load_split_from_config(cfg, "valid")
    assert ck["hyper_parameters"]["tags"] == train_split.tags
    one = validate_one_process(module, make_loaders(cfg, train_split, valid_split)[1])
    assert_same_numbers(ranks_b[0]["metrics"], one, ["Valid/loss", "Valid/pr_auc", "Valid/roc_auc"])
