"""Helpers shared by the prepare tests (local and Ray engine)."""
import shutil
from pathlib import Path


def copy_good_videos(corpus, dst: Path, n: int) -> Path:
    """``n`` copies of the corpus' good.mp4 (v0..) and its long-scene video: kept and dropped rows."""
    dst.mkdir()
    for i in range(n):
        shutil.copyfile(corpus["dir"] / "good.mp4", dst / f"v{i}.mp4")
    shutil.copyfile(corpus["dir"] / f"{corpus['roles']['long']}.mp4", dst / "long.mp4")
    return dst
