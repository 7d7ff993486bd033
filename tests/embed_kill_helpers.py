"""`python tests/embed_kill_helpers.py MARKER STOP_NAME -- VCMR_ARGS...` runs the real `vcmr`
command and stops for good when `vcmr embed` starts reading the file named STOP_NAME, so that a
test can SIGKILL it there: every file before it is finished, the one it stops at is not.
``MARKER`` is written at the stop, then the process sleeps.
"""
import sys
import time
from pathlib import Path

import vcmr.embed_io

_stream = vcmr.embed_io.AudioStream


def _stopping_stream(path, *args, **kwargs):
    if Path(path).name == STOP_NAME:
        MARKER.write_text(str(path))
        time.sleep(600)
    return _stream(path, *args, **kwargs)


if __name__ == "__main__":
    MARKER, STOP_NAME = Path(sys.argv[1]), sys.argv[2]
    vcmr.embed_io.AudioStream = _stopping_stream
    from vcmr.cli import main
    sys.exit(main(sys.argv[sys.argv.index("--") + 1:]))
