"""benchmarks/gpu_check.py runs every section in --cpu-smoke mode and writes its summary."""
import json
import math
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
def test_gpu_check_cpu_smoke(tmp_path):
    out = tmp_path / "gc"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--cpu-smoke",
                          "--out", str(out), "--workdir", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=480, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    res = json.loads((out / "gpu_check.json").read_text())
    md = (out / "gpu_check.md").read_text()
    assert res["cpu_smoke"] is True and md in run.stdout
    s1 = res["stage1"]["32-true"]
    numbers = [s1["model_only_ms"], s1["gpu_augment_ms"], s1["cpu_workers2_augment"]["ms_per_step"],
               res["stage1"]["pipeline"]["model_share"], res["stage2"]["32-true"]["ms_per_step"],
               res["prepare"]["bare_decode_video_s_per_s"], res["embedding"]["batch8"]["clips_per_s"]]
    assert all(math.isfinite(v) and v > 0 for v in numbers), numbers
    for w in (0, 2):  # every video prepared with each worker count
        assert res["prepare"][f"workers{w}"]["counts"] == {"kept": 2}
    ray = res["prepare"]["ray"]  # the Ray engine row: same outputs as the local engine
    assert ray["counts"] == {"kept": 2} and ray["same_rows_as_local"] and ray["same_wavs_as_local"]
    assert "| Ray engine, start included" in md
    assert 0 < res["stage1"]["pipeline"]["model_share"] <= 1
    for heading in ("## Stage 1 step", "## Stage 2 step", "## vcmr prepare", "embedding throughput"):
        assert heading in md
