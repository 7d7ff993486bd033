"""Per-epoch randomness that reaches data-loader workers.

Training datasets draw each item's random excerpt or crop from ``(seed, epoch, index)``. The
epoch cannot be set on the dataset in the main process: persistent workers (and workers
started before the epoch hook runs, which Lightning does on the first and on a resumed epoch)
keep their own copy of the dataset. Instead the epoch travels with every index:

* :class:`EpochSampler` yields ``(index, epoch)`` pairs. Lightning calls ``set_epoch`` on it
  each epoch (under DDP through the ``DistributedSamplerWrapper`` it puts around it, which
  shards the pairs across processes and forwards ``set_epoch``); without ``set_epoch`` each
  new pass counts one epoch on, so a plain loop over the loader gets fresh draws too.
* :class:`EpochItems` wraps a dataset that has an ``epoch`` attribute: in whichever process
  reads the item, it sets ``epoch`` from the pair before reading.
* :class:`ResumeSamplerEpoch` (a callback) sets the sampler's epoch from the checkpoint when
  training resumes, because Lightning starts the resumed epoch's iterator before its first
  ``set_epoch`` call.

The order of a shuffled epoch is drawn from ``(seed, epoch)``, so a run is reproducible.
"""
from __future__ import annotations

from typing import Iterator

import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.data import Dataset, Sampler


class EpochSampler(Sampler):
    """``(index, epoch)`` for every item, shuffled by ``(seed, epoch)`` when ``shuffle``."""

    def __init__(self, n_items: int, shuffle: bool, seed: int = 0):
        self.n_items, self.shuffle, self.seed = int(n_items), bool(shuffle), int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_items

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch += 1  # the next pass without set_epoch is the next epoch
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            order = torch.randperm(self.n_items, generator=gen).tolist()
        else:
            order = range(self.n_items)
        return iter([(int(i), epoch) for i in order])


class EpochItems(Dataset):
    """``dataset[(index, epoch)]`` -> the wrapped dataset's item ``index`` read at ``epoch``;
    a plain integer index reads at the dataset's own ``epoch``. Other attributes are the
    wrapped dataset's."""

    def __init__(self, dataset: Dataset, with_index: bool = False):
        self.dataset, self.with_index = dataset, with_index

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key):
        if isinstance(key, (tuple, list)):
            index, epoch = int(key[0]), int(key[1])
            self.dataset.epoch = epoch  # this process's copy: set before each read
        else:
            index = int(key)
        item = self.dataset[index]
        if self.with_index:  # ``(item, index)``; an unreadable item stays None
            return None if item is None else (item, index)
        return item

    def __getattr__(self, name: str):
        if name == "dataset":  # not yet set (unpickling): avoid recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def epoch_loader_kwargs(dataset: Dataset, shuffle: bool, seed: int, with_index: bool = False) -> dict:
    """DataLoader arguments that carry the epoch to the workers (see the module docstring)."""
    return dict(dataset=EpochItems(dataset, with_index),
                sampler=EpochSampler(len(dataset), shuffle, seed))


def resume_epoch(checkpoint: dict) -> int:
    """The epoch a resumed run starts with: what Lightning will pass to ``set_epoch``."""
    try:
        return int(checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        return int(checkpoint.get("epoch", 0))


class ResumeSamplerEpoch(Callback):
    """Before the resumed epoch's iterator is made, give ``samplers`` that epoch."""

    def __init__(self, *samplers: EpochSampler):
        self.samplers = [s for s in samplers if isinstance(s, EpochSampler)]

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for s in self.samplers:
            s.set_epoch(resume_epoch(checkpoint))
