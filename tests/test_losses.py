import math
import pytest
import torch
import torch.multiprocessing as mp

from ddp_helpers import free_port, ntxent_worker
import torch.nn.functional as F

from vcmr.losses import AudioVideoNTXent, NTXent, cross_modal_nt_xent, nt_xent


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


def simclr_audio_video_loop(z_audio, z_video, tau):
    """The authors' stage-2 loss written out from SimCLR's NT_Xent (Spijkervet/SimCLR
    simclr/modules/nt_xent.py), called as NT_Xent(z_audio, z_video): the 2N rows of
    cat(z_audio, z_video); cosine similarity / tau; for each row the logits are its positive
    followed by every other row except itself (audio-audio, video-video and the other
    audio-video pairs: 2N-2 negatives); cross-entropy with target 0, summed, divided by 2N."""
    n = z_audio.shape[0]
    rows = [("audio", i, z_audio[i]) for i in range(n)] + [("video", i, z_video[i]) for i in range(n)]

    def cos(u, v):
        return float(u @ v) / max(float(u.norm()) * float(v.norm()), 1e-8)

    total = 0.0
    for mod, i, z in rows:
        positive = [cos(z, w) / tau for m, j, w in rows if m != mod and j == i]
        negatives = [cos(z, w) / tau for m, j, w in rows if not (m == mod and j == i) and not (m != mod and j == i)]
        assert len(positive) == 1 and len(negatives) == 2 * n - 2
        logits = positive + negatives
        total += -(logits[0] - math.log(sum(math.exp(x) for x in logits)))
    return total / (2 * n)


@pytest.mark.parametrize("n,tau", [(2, 0.1), (5, 0.1), (4, 0.5)])
def test_stage2_loss_is_simclr_nt_xent_with_intra_modal_negatives(n, tau):
    g = torch.Generator().manual_seed(10 + n)
    za, zv = 3 * torch.randn(n, 16, generator=g), torch.randn(n, 16, generator=g)
    expected = simclr_audio_video_loop(za, zv, tau)
    assert AudioVideoNTXent(tau)(za, zv).item() == pytest.approx(expected, rel=1e-5)  # default: all
    assert AudioVideoNTXent(tau, "all")(za, zv).item() == pytest.approx(expected, rel=1e-5)
    # cross (the ablation): the same pairs without the intra-modal negatives -> another number
    cross = AudioVideoNTXent(tau, "cross")(za, zv).item()
    assert cross == pytest.approx(cross_modal_nt_xent(za, zv, tau).item())
    assert abs(cross - expected) > 1e-3


def test_stage2_intra_modal_negatives_matter():
    """Only "all" penalises audio embeddings that collapse onto each other."""
    g = torch.Generator().manual_seed(1)
    zv = torch.randn(6, 8, generator=g)
    spread = zv + 0.05 * torch.randn(6, 8, generator=g)
    collapsed = spread.clone()
    collapsed[:, 0] += 20.0  # every audio embedding pushed towards one direction
    all_loss, cross_loss = AudioVideoNTXent(0.1, "all"), AudioVideoNTXent(0.1, "cross")
    assert all_loss(collapsed, zv) - all_loss(spread, zv) > cross_loss(collapsed, zv) - cross_loss(spread, zv)


def test_stage2_loss_rejects_unknown_negatives():
    with pytest.raises(ValueError, match="negatives='intra'.*'all'.*'cross'"):
        AudioVideoNTXent(0.1, "intra")


@pytest.mark.parametrize("negatives", [None, pytest.param("all", marks=pytest.mark.slow)])
def test_ntxent_gathers_global_batch_in_two_processes(negatives):
    """Stage 1 (NTXent) and stage 2 (AudioVideoNTXent, negatives all) see the global batch."""
    torch.manual_seed(0)
    za, zb = torch.randn(5, 8), torch.randn(5, 8)
    ref_a, ref_b = za.clone().requires_grad_(True), zb.clone().requires_grad_(True)
    ref = nt_xent(ref_a, ref_b, 0.1)
    ref.backward()
    out = mp.Manager().dict()
    mp.spawn(ntxent_worker, args=(2, free_port(), za, zb, out, negatives), nprocs=2, join=True)
    for rank, sl in ((0, slice(0, 3)), (1, slice(3, 5))):
        loss, ga, gb = out[rank]
        assert loss == pytest.approx(ref.item(), rel=1e-5)  # every process sees all 2N-2 negatives
        torch.testing.assert_close(ga, ref_a.grad[sl] / 1, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gb, ref_b.grad[sl] / 1, rtol=1e-4, atol=1e-6)
