"""Shared fixtures. Spawned test processes import helpers from this folder by module name."""
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

ROOT = TESTS.parent
import os

_CANDIDATES = [os.environ.get("VCMR_SHARED_DATA", ""), ROOT.parent / "shared" / "data", "/work/shared/data"]
SHARED_DATA = next((Path(c) for c in _CANDIDATES if c and Path(c).is_dir()), ROOT.parent / "shared" / "data")

TINY_OVERRIDES = ["--n_blocks", "6", "--n_channels", "16,16,32,32,32,64", "--audio_length", "2187",
                  "--first_block_params.conv_size", "3", "--first_block_params.out_channels", "16",
                  "--output_size", "64"]


@pytest.fixture
def shared_data():
    """The real metadata files in ../shared/data (skips when absent, e.g. outside this workspace)."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
