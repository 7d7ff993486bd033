"""Helpers shared by the prepare tests (local and Ray engine)."""
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from vcmr.prepare.pipeline import read_manifest

CLI = "import sys; from vcmr.cli import main; sys.exit(main(sys.argv[1:]))"


def copy_good_videos(corpus, dst: Path, n: int) -> Path:
    """``n`` copies of the corpus' good.mp4 (v0..) and its long-scene video: kept and dropped rows."""
    dst.mkdir()
    for i in range(n):
        shutil.copyfile(corpus["dir"] / "good.mp4", dst / f"v{i}.mp4")
    shutil.copyfile(corpus["dir"] / f"{corpus['roles']['long']}.mp4", dst / "long.mp4")
    return dst


def kill_after_first_row(args: list[str], out: Path, timeout: float) -> int:
    """Run ``vcmr <args>`` in a subprocess, SIGKILL it once ``out``'s manifest has a row (or
    after ``timeout`` s); returns the number of finished videos it left."""
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    manifest, deadline = out / "manifest.jsonl", time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if manifest.is_file() and manifest.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return len(read_manifest(out))
