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


# --------------------------------------------------------------- training runs in a subprocess
# `python tests/ddp_helpers.py OUT_DIR [--sigterm_at_step N] -- VCMR_ARGS...` runs the real
# `vcmr` command VCMR_ARGS with a recording callback added to the stage's training. Lightning's
# DDP launcher starts the other processes by running this same command line again (with
# LOCAL_RANK set), so every process records into OUT_DIR/rank<R>.json.
import json  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from pytorch_lightning.callbacks import Callback  # noqa: E402


def _fingerprint(x) -> float:
    return round(float(x.double().abs().sum()), 6)


class Recorder(Callback):
    """Per training batch: epoch, step, item indices and a fingerprint of each item's audio;
    whether the step trained; for stage 1 the augmentation parameters its generator drew."""

    def __init__(self, out: Path, sigterm_at_step: int | None = None):
        self.out, self.sigterm_at_step = Path(out), sigterm_at_step
        self.rows, self.aug = [], None

    def on_train_start(self, trainer, pl_module):
        if hasattr(pl_module, "_views"):
            original = pl_module._views

            def recording_views(batch, generator):
                if self.aug is None:  # replay the generator's draws for the first view
                    import torch
                    from vcmr.audio.augment import content_lengths
                    gen = torch.Generator()
                    gen.set_state(generator.get_state() if generator is not None else torch.get_rng_state())
                    p = pl_module.augment.sample(batch.shape[0], content_lengths(batch, pl_module.augment.audio_length),
                                                 "cpu", gen)
                    self.aug = {k: getattr(p, k).float().tolist() for k in ("offset", "gain_db", "filter_cutoff_hz")}
                return original(batch, generator)
            pl_module._views = recording_views

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        x, last = batch[0], batch[-1]  # stage 1 (x, index), 2 (audio, video, index), 3 (x, labels)
        idx = None if last.is_floating_point() else last
        row = {"epoch": trainer.current_epoch, "step": trainer.global_step, "n": int(x.shape[0]),
               "trained": not getattr(pl_module, "_skipped_step", False)}
        if idx is not None and idx.dim() == 1:
            row["items"] = {str(int(i)): _fingerprint(x[k]) for k, i in enumerate(idx)}
        self.rows.append(row)
        self.save(trainer)
        if self.sigterm_at_step is not None and trainer.global_step == self.sigterm_at_step and trainer.global_rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)

    def save(self, trainer):
        self.out.mkdir(parents=True, exist_ok=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(
            {"rows": self.rows, "aug": self.aug, "metrics": metrics, "world": trainer.world_size}))

    def on_fit_end(self, trainer, pl_module):
        self.save(trainer)


def run_cli(argv: list[str]) -> int:
    out = Path(argv[0])
    sigterm = int(argv[argv.index("--sigterm_at_step") + 1]) if "--sigterm_at_step" in argv else None
    vcmr_args = argv[argv.index("--") + 1:]
    recorder = Recorder(out, sigterm)
    import vcmr.train.music as music
    import vcmr.train.tagging as tagging
    import vcmr.train.video as video
    for mod, name in ((music, "train_music"), (video, "train_video"), (tagging, "train_tagging")):
        original = getattr(mod, name)
        setattr(mod, name, lambda cfg, _f=original: _f(cfg, callbacks=[recorder]))
    from vcmr.cli import main
    return main(vcmr_args)


if __name__ == "__main__":
    sys.exit(run_cli(sys.argv[1:]))
