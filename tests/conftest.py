"""Shared fixtures. Spawned test processes import helpers from this folder by module name."""
import os
import sys
from pathlib import Path

# Before torch is imported: the thread defaults of the `vcmr` command (OpenMP threads that
# sleep instead of spinning while they wait; see vcmr/threads.py), so the suite does not slow
# itself down many times on a loaded machine.
from vcmr.threads import configure_threads  # noqa: E402  (imports nothing heavy)

configure_threads()

import pytest  # noqa: E402

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

ROOT = TESTS.parent

_CANDIDATES = [os.environ.get("VCMR_SHARED_DATA", ""), ROOT.parent / "shared" / "data", "/work/shared/data"]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), ROOT.parent / "shared" / "data")

# The small SampleCNN of every test (GUIDE section 5): stem + 6 blocks, 3 x 3^6 = 2187 samples,
# 64-D embeddings. Tests build it only from here: as config keys, or as overrides.
TINY_ENCODER = {"n_blocks": 6, "n_channels": [16, 16, 32, 32, 32, 64], "audio_length": 2187,
                "first_block_params": {"conv_size": 3, "out_channels": 16}, "output_size": 64}


def tiny_overrides(**changes) -> list[str]:
    """TINY_ENCODER with ``changes`` as ``--key value`` config overrides."""
    out = []
    for key, value in {**TINY_ENCODER, **changes}.items():
        if isinstance(value, dict):
            out += [x for sub, v in value.items() for x in (f"--{key}.{sub}", str(v))]
        else:
            out += [f"--{key}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return out


TINY_OVERRIDES = tiny_overrides()


@pytest.fixture
def shared_data():
    """The real metadata files in ../shared/data (skips when absent, e.g. outside this workspace)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA


REAL_MEDIA_FILES = ("trailer_bbb.mp4", "bigbuckbunny.mp4", "Kevin_MacLeod_-_Vibe_Ace.ogg",
                    "Chimes They Fade.ogg")


@pytest.fixture(scope="session")
def real_media() -> Path:
    """../shared/data/media: real recordings (see shared/data/SOURCES.md), read in place, never
    copied into the repository. Skips when the folder or one of its files is absent."""
    media = SHARED_DATA / "media"
    missing = [f for f in REAL_MEDIA_FILES if not (media / f).is_file()]
    if missing:
        pytest.skip(f"real media not available ({media} lacks {', '.join(missing)}; "
                    f"set VCMR_SHARED_DATA to a folder holding media/)")
    return media


def write_music_clips(root: Path, n: int, tag_seed: int) -> Path:
    """``n`` one-second synthetic music clips, clip00.wav..., 16 kHz, random tags."""
    import numpy as np
    import soundfile as sf

    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.tags import random_tags
    rng = np.random.default_rng(tag_seed)
    for i in range(n):
        clip = render_music(random_tags(rng), 1.0, 16000, seed=i)
        sf.write(str(root / f"clip{i:02d}.wav"), clip.audio, 16000)
    return root


@pytest.fixture(scope="session")
def synth_audio_dir(tmp_path_factory):
    """16 one-second synthetic music clips (WAV, 16 kHz)."""
    return write_music_clips(tmp_path_factory.mktemp("synth_audio"), 16, tag_seed=0)


@pytest.fixture(scope="session")
def stage1_ckpt(synth_audio_dir, tmp_path_factory):
    """A real stage-1 checkpoint of the tiny SampleCNN (2 training steps)."""
    from vcmr.config import load_config
    from vcmr.train.music import train_music
    runs = tmp_path_factory.mktemp("stage1_runs")
    cfg = load_config("music", overrides=TINY_OVERRIDES + [
        "--dataset_dir", str(synth_audio_dir), "--log_dir", str(runs), "--batch_size", "8",
        "--workers", "0", "--progress_bar", "false", "--max_steps", "2", "--m_epochs", "1"])
    return train_music(cfg)["last"]
