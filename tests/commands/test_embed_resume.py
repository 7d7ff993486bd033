"""`vcmr embed` writes each finished file to a journal: a run killed with SIGKILL keeps the
finished files, and the same command run again embeds only the others."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vcmr.audio.io import write_wav
from vcmr.cli import main
from vcmr.embed_journal import EmbedJournal, journal_path, model_identity, source_key

from embed_helpers import SR, music, stage1_checkpoint

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    ckpt = stage1_checkpoint(tmp_path_factory.mktemp("resume_models"))
    out = tmp_path_factory.mktemp("resume_model") / "model.safetensors"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    return out


def _songs(folder: Path, n: int) -> list[Path]:
    paths = [folder / f"song{i:02d}.wav" for i in range(n)]
    for i, p in enumerate(paths):
        write_wav(p, music(0.6, SR, seed=100 + i), SR)
    return paths


def _swap_content(path: Path, seed: int, keep_mtime: bool) -> None:
    """Other audio of the same length (so the same size); the mtime restored if asked."""
    st = path.stat()
    write_wav(path, music(0.6, SR, seed=seed, tags=("drums",)), SR)
    assert path.stat().st_size == st.st_size
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _rows(out: Path) -> dict[str, np.ndarray]:
    z = np.load(out)
    return {p: z["embedding"][z["path"] == p] for p in sorted(set(z["path"]))}


def test_sigkill_mid_run_keeps_finished_files_and_the_rerun_skips_them(model_file, tmp_path):
    songs = _songs(tmp_path / "music", 8)
    ref = tmp_path / "ref.npz"
    assert main(["embed", str(tmp_path / "music"), "--ckpt", str(model_file), "--out", str(ref), "--quiet"]) == 0
    expected = _rows(ref)

    out, marker = tmp_path / "emb.npz", tmp_path / "stopped"
    args = ["embed", str(tmp_path / "music"), "--ckpt", str(model_file), "--out", str(out), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    proc = subprocess.Popen([sys.executable, str(TESTS / "embed_kill_helpers.py"), str(marker),
                             songs[5].name, "--", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + TIMEOUT_S
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    output = proc.communicate()[0]
    assert marker.exists(), f"the run never reached {songs[5].name}:\n{output[-3000:]}"
    assert not out.exists()
    journal = journal_path(out)
    assert journal.is_file()

    # Songs 0-3 get other audio of the same size with the mtime restored: if the rerun embedded
    # them again their rows would change, so equal rows prove they came from the journal.
    # Song 4 gets other audio and a new mtime: the journal's entry is stale and it is redone.
    for i in range(4):
        _swap_content(songs[i], seed=200 + i, keep_mtime=True)
    _swap_content(songs[4], seed=204, keep_mtime=False)
    r = subprocess.run([sys.executable, "-m", "vcmr.cli", *args], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming an interrupted run" in r.stderr and "5 file(s) already embedded" in r.stderr
    assert "4 of them taken from the interrupted run" in r.stdout
    got = _rows(out)
    assert sorted(got) == sorted(expected)
    for i, song in enumerate(songs):
        same = np.allclose(got[str(song)], expected[str(song)], rtol=1e-5, atol=1e-6)
        assert same == (i != 4), song.name
    assert not journal.exists()  # removed once --out is complete


def test_other_settings_or_a_torn_record_never_give_wrong_rows(model_file, tmp_path):
    songs = _songs(tmp_path / "music", 3)
    out = tmp_path / "emb.npz"
    args = ["embed", *map(str, songs), "--ckpt", str(model_file), "--out", str(out), "--quiet"]
    # a journal left by a run with another --overlap: its rows must not be used
    stale = EmbedJournal(out, {"model": "other"})
    stale.resume()
    stale.add(source_key(songs[0]), [0.0], [1.0], np.zeros((1, 4), np.float32))
    stale.close()
    r = subprocess.run([sys.executable, "-m", "vcmr.cli", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=TIMEOUT_S)
    assert r.returncode == 0 and "other settings" in r.stderr, r.stderr
    ref = _rows(out)

    # a record cut short (power cut): it and what follows are dropped, the rest is kept
    settings = {**model_identity(str(model_file)), "overlap": 0.0, "song_level": False, "space": "encoder"}
    j = EmbedJournal(out, settings)
    j.resume()
    for s in songs[:2]:
        j.add(source_key(s), [0.0], [0.1], ref[str(s)][:1])
    j.close()
    data = j.path.read_bytes()
    j.path.write_bytes(data[:-7])
    j2 = EmbedJournal(out, settings)
    assert "1 file(s) already embedded" in j2.resume()
    assert list(j2.done) == [source_key(songs[0])]
    j2.close()
    assert j2.path.stat().st_size < len(data) - 7  # cut back to the last whole record
    j2.remove()
