"""`python tests/ckpt_kill_helpers.py MARKER -- VCMR_ARGS...` runs the real `vcmr` command and
stops for good inside a checkpoint write, so that a test can SIGKILL it there.

The stop point: the first time a file whose name contains ``last.ckpt`` is opened for writing
in a ``checkpoints`` folder that already holds a ``last.ckpt`` (the second save of it), right
after the open. Lightning's own writer opens ``last.ckpt`` itself there (truncating it); vcmr's
opens a temporary next to it. Before the open the good ``last.ckpt`` is copied to
``MARKER.before``; after it ``MARKER`` is written and the process sleeps.
"""
import builtins
import shutil
import sys
import time
from pathlib import Path

_open = builtins.open


def _stopping_open(file, mode="r", *args, **kwargs):
    path = Path(file) if isinstance(file, (str, Path)) else None
    if (path is not None and ("w" in mode or "x" in mode) and path.parent.name == "checkpoints"
            and "last.ckpt" in path.name and (path.parent / "last.ckpt").is_file()):
        shutil.copyfile(path.parent / "last.ckpt", MARKER.with_name(MARKER.name + ".before"))
        f = _open(file, mode, *args, **kwargs)
        MARKER.write_text(str(path))
        time.sleep(600)
        return f
    return _open(file, mode, *args, **kwargs)


if __name__ == "__main__":
    MARKER = Path(sys.argv[1])
    builtins.open = _stopping_open
    from vcmr.cli import main
    sys.exit(main(sys.argv[sys.argv.index("--") + 1:]))
