"""Functions run in spawned processes (must be importable by module name)."""
import os
import socket

import torch.distributed as dist

from vcmr.losses import AudioVideoNTXent, NTXent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ntxent_worker(rank, world, port, za, zb, out, negatives=None):
    """negatives None: the stage-1 NTXent; 'all' / 'cross': the stage-2 AudioVideoNTXent."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    sizes = [3, 2]  # unequal per-process batches, like a smaller last batch
    start = sum(sizes[:rank])
    a = za[start:start + sizes[rank]].clone().requires_grad_(True)
    b = zb[start:start + sizes[rank]].clone().requires_grad_(True)
    loss_fn = NTXent(0.1) if negatives is None else AudioVideoNTXent(0.1, negatives)
    loss = loss_fn(a, b)
    loss.backward()
    # DDP averages parameter gradients over processes; emulate that for the inputs.
    out[rank] = (loss.item(), a.grad / world, b.grad / world)
    dist.destroy_process_group()
