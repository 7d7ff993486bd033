import math
import pytest
import torch
import torch.multiprocessing as mp

from ddp_helpers import free_port, ntxent_worker
import torch.nn.functional as F

from vcmr.losses import NTXent, cross_modal_nt_xent, nt_xent


def loop_nt_xent(za, zb, tau):
    """SimCLR's formula written out: mean over 2N anchors of -log softmax of the positive."""
    z = [F.normalize(v, dim=0) for v in torch.cat([za, zb])]
    n = za.shape[0]
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        num = math.exp(float(z[i] @ z[pos]) / tau)
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    return total / (2 * n)


@pytest.mark.parametrize("n", [2, 3, 7])
def test_nt_xent_matches_loop(n):
    g = torch.Generator().manual_seed(n)
    za, zb = torch.randn(n, 8, generator=g), torch.randn(n, 8, generator=g)
    assert nt_xent(za, zb, 0.1).item() == pytest.approx(loop_nt_xent(za, zb, 0.1), rel=1e-4)
    assert NTXent(0.5)(za, zb).item() == pytest.approx(loop_nt_xent(za, zb, 0.5), rel=1e-4)


def test_nt_xent_prefers_aligned_pairs():
    za = torch.randn(6, 16)
    assert nt_xent(za, za + 0.01 * torch.randn(6, 16)) < nt_xent(za, torch.randn(6, 16))


def test_cross_modal_matches_loop():
    za, zv = torch.randn(5, 4), torch.randn(5, 4)
    a, v = F.normalize(za, dim=1), F.normalize(zv, dim=1)
    s = (a @ v.t() / 0.1).tolist()
    a2v = -sum(s[i][i] - math.log(sum(math.exp(x) for x in s[i])) for i in range(5)) / 5
    v2a = -sum(s[i][i] - math.log(sum(math.exp(s[k][i]) for k in range(5))) for i in range(5)) / 5
    assert cross_modal_nt_xent(za, zv, 0.1).item() == pytest.approx((a2v + v2a) / 2, rel=1e-4)


def test_ntxent_gathers_global_batch_in_two_processes():
    torch.manual_seed(0)
    za, zb = torch.randn(5, 8), torch.randn(5, 8)
    ref_a, ref_b = za.clone().requires_grad_(True), zb.clone().requires_grad_(True)
    ref = nt_xent(ref_a, ref_b, 0.1)
    ref.backward()
    out = mp.Manager().dict()
    mp.spawn(ntxent_worker, args=(2, free_port(), za, zb, out), nprocs=2, join=True)
    for rank, sl in ((0, slice(0, 3)), (1, slice(3, 5))):
        loss, ga, gb = out[rank]
        assert loss == pytest.approx(ref.item(), rel=1e-5)  # every process sees all 2N-2 negatives
        torch.testing.assert_close(ga, ref_a.grad[sl] / 1, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gb, ref_b.grad[sl] / 1, rtol=1e-4, atol=1e-6)
