import torch

from vcmr.models.video import VideoEncoder


def test_video_branch_runs_under_cpu_bf16_autocast():
    """On CPUs whose oneDNN has no bf16 LSTM (this AMD EPYC), `precision: bf16-mixed` crashed in
    stage 2's LSTM; under CPU autocast the LSTM now runs in float32."""
    torch.manual_seed(0)
    branch = VideoEncoder(8, 3, layers=2, output_size=16)
    x = torch.randn(2, 3, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = branch(x)
    assert y.shape == (2, 16) and torch.isfinite(y.float()).all()
    assert torch.allclose(y.float(), branch(x), atol=0.05)  # the Linear runs in bf16
