"""Contrastive losses. Embeddings are gathered across processes (with gradients) under DDP,
so every process sees the negatives of the global batch."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward returns each process the gradient of its own slice."""

    @staticmethod
    def forward(ctx, x: torch.Tensor):
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(dist.get_world_size())]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
        sizes = [int(s.item()) for s in sizes]
        max_n = max(sizes)
        padded = torch.zeros((max_n, *x.shape[1:]), dtype=x.dtype, device=x.device)
        padded[: x.shape[0]] = x
        out = [torch.zeros_like(padded) for _ in sizes]
        dist.all_gather(out, padded.contiguous())
        ctx.sizes, ctx.rank = sizes, dist.get_rank()
        return torch.cat([o[:n] for o, n in zip(out, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        dist.all_reduce(grad)  # every process computed the loss over the global batch
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start: start + ctx.sizes[ctx.rank]]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all processes (no-op when not distributed); batch sizes may differ."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def nt_xent(z_a: torch.Tensor, z_b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent of SimCLR for positive pairs (z_a[i], z_b[i]); 2N-2 negatives per anchor.

    Works for any batch size N >= 1 (N = 1 has no negatives and gives 0).
    """
    z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)
    n = z_a.shape[0]
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, targets)


def cross_modal_nt_xent(z_a: torch.Tensor, z_v: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Symmetric InfoNCE between two modalities: audio->video and video->audio, averaged."""
    z_a, z_v = F.normalize(z_a.float(), dim=1), F.normalize(z_v.float(), dim=1)
    logits = z_a @ z_v.t() / temperature
    targets = torch.arange(z_a.shape[0], device=z_a.device)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets))


class NTXent(nn.Module):
    """SimCLR loss over the global batch: gathers both views from all processes first."""

    def __init__(self, temperature: float = 0.1):
        super().__init__()
        self.temperature = temperature

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        return nt_xent(gather_with_grad(z_a), gather_with_grad(z_b), self.temperature)


NEGATIVES = ("all", "cross")


class AudioVideoNTXent(nn.Module):
    """Stage-2 loss between audio and video embeddings over the global batch.

    ``negatives="all"`` (the authors' objective: SimCLR's NT-Xent on the concatenated audio and
    video embeddings): each of the 2N anchors has its pair as positive and the 2N-2 other
    embeddings as negatives, audio-audio and video-video included. ``negatives="cross"``:
    CLIP-style InfoNCE, audio->video and video->audio with the N-1 other-modality negatives
    (an ablation: no intra-modal negatives). Both use cosine similarity / temperature.
    """

    def __init__(self, temperature: float = 0.1, negatives: str = "all"):
        super().__init__()
        if negatives not in NEGATIVES:
            raise ValueError(f"negatives={negatives!r}: choose 'all' (SimCLR NT-Xent, the "
                             f"authors' objective) or 'cross' (cross-modal InfoNCE)")
        self.temperature, self.negatives = temperature, negatives

    def forward(self, z_audio: torch.Tensor, z_video: torch.Tensor) -> torch.Tensor:
        loss = nt_xent if self.negatives == "all" else cross_modal_nt_xent
        return loss(gather_with_grad(z_audio), gather_with_grad(z_video), self.temperature)
