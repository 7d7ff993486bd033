"""`python tests/cache_kill_helpers.py MARKER_DIR -- VCMR_ARGS...` runs the real `vcmr` command
with a decoder that, in each pool worker, writes ``MARKER_DIR/<pid>`` and then sleeps, so that a
test can SIGKILL the parent while every worker is busy. The pool forks (the default start
method on Linux), so the workers run this patched decoder.
"""
import os
import sys
import time
from pathlib import Path

import vcmr.data.cache


def _stuck_read(path, *args, **kwargs):
    (MARKER_DIR / str(os.getpid())).write_text(str(path))
    time.sleep(600)
    raise RuntimeError("not reached")


if __name__ == "__main__":
    MARKER_DIR = Path(sys.argv[1])
    vcmr.data.cache.read_audio = _stuck_read
    from vcmr.cli import main
    sys.exit(main(sys.argv[sys.argv.index("--") + 1:]))
