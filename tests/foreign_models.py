"""Modules with the structure and attribute names of the original projects' models, written
for the tests (random weights, randomised BatchNorm statistics), and the files their training
code saves: Lightning 1.x checkpoints of the VCMR authors' three modules and of CLMR, and
CLMR's plain PyTorch state dict (the layout of ``clmr_checkpoint_10000.pt``).

The attribute names decide the state-dict keys: ``encoder.all_blocks.<i>`` (VCMR),
``encoder.sequential.<i>`` (CLMR), ``nn.Sequential`` aliases ``model.*``, ``audio_model.*``,
``video_model.*`` holding the same tensors again.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from conftest import TINY_ENCODER
from torch import nn

# the authors' config_mus.yaml keys (trainer arguments of Lightning 1.x are added below)
AUTHORS_HP = {"sample_rate": 16000, "audio_length": 98415, "n_blocks": 9,
              "n_channels": [128, 128, 256, 256, 256, 256, 256, 512, 512], "output_size": 512,
              "conv_kernel_size": 3, "pool_size": 3, "activation": "relu",
              "first_block_params": {"out_channels": 128, "conv_size": 5}, "projection_dim": 128,
              "batch_size": 64, "m_epochs": 15, "optimizer": "Adam", "learning_rate": 0.001,
              "weight_decay": "1e-6", "temperature": 0.1, "val_freq": 1, "log_freq": 10,
              "workers": 4, "n_cuda": "2, 3", "bit_precision": 16, "seed": 42, "ckpt_path": None,
              "log_dir": "runs", "experiment_name": "music_pretraining", "experiment_version": None,
              # a few of Lightning 1.7's Trainer.add_argparse_args defaults
              "accelerator": None, "gpus": None, "devices": None, "precision": 32,
              "max_epochs": None, "strategy": None, "amp_backend": "native", "logger": True}
# the tests' small geometry (conftest.TINY_ENCODER) with the authors' 512-D output
TINY = {**TINY_ENCODER, "output_size": 512}


def _block(conv: nn.Conv1d, pool: int | None) -> nn.Sequential:
    layers = [conv, nn.BatchNorm1d(conv.out_channels), nn.ReLU()]
    return nn.Sequential(*layers, *([nn.MaxPool1d(pool, stride=pool)] if pool else []))


class AuthorsSampleCNN(nn.Module):
    """Stem, n_blocks pooled blocks (padding "same"), a 1x1 last block, as ``all_blocks``."""

    def __init__(self, n_blocks, n_channels, output_size, first_block_params, pool=3, k=3):
        super().__init__()
        self.output_size = output_size
        c0, s = first_block_params["out_channels"], first_block_params["conv_size"]
        blocks = [_block(nn.Conv1d(1, c0, s, stride=s), None)]
        for c_in, c_out in zip([c0, *n_channels[:-1]], n_channels):
            blocks.append(_block(nn.Conv1d(c_in, c_out, k, padding="same"), pool))
        blocks.append(_block(nn.Conv1d(n_channels[-1], output_size, 1), None))
        self.all_blocks = nn.Sequential(*blocks)

    def forward(self, x):
        return self.all_blocks(x).squeeze(-1)


def _projector(n, out):
    return nn.Sequential(nn.Linear(n, n, bias=False), nn.ReLU(), nn.Linear(n, out, bias=False))


class AuthorsContrastive(nn.Module):
    def __init__(self, encoder, projection_dim=128):
        super().__init__()
        self.encoder = encoder
        self.projector = _projector(encoder.output_size, projection_dim)
        self.model = nn.Sequential(self.encoder, self.projector)


class AuthorsMultimodal(nn.Module):
    def __init__(self, encoder, crop_seconds, n_features, lstm_layers=2, projection_dim=128):
        super().__init__()
        n = encoder.output_size
        self.encoder = encoder
        self.audio_projector = _projector(n, projection_dim)
        self.audio_model = nn.Sequential(self.encoder, self.audio_projector)
        self.video_temporal = nn.LSTM(n_features, n_features, num_layers=lstm_layers,
                                      batch_first=True, dropout=0.1)
        self.video_encoder = nn.Sequential(nn.Flatten(), nn.Linear(crop_seconds * n_features, n), nn.ReLU())
        self.video_projector = _projector(n, projection_dim)
        self.video_model = nn.Sequential(self.video_encoder, self.video_projector)

    def joint_video(self, v):
        x, _ = self.video_temporal(v)
        return self.video_model(x)


class AuthorsSupervised(nn.Module):
    def __init__(self, encoder, n_tags, projection_dim=128):
        super().__init__()
        self.encoder = encoder
        self.projector = nn.Sequential(nn.Dropout(0.3), nn.Linear(512, projection_dim), nn.ReLU(),
                                       nn.Linear(projection_dim, n_tags))
        self.model = nn.Sequential(self.encoder, self.projector)


class ClmrSampleCNN(nn.Module):
    """CLMR's SampleCNN as ``sequential``: stem kernel 3 stride 3, nine kernel-3 blocks with
    padding 1, a kernel-3 last block; ``fc`` replaced by identity for SimCLR."""

    def __init__(self):
        super().__init__()
        hidden = [(128, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 256),
                  (256, 256), (256, 256), (256, 512)]
        blocks = [_block(nn.Conv1d(1, 128, 3, stride=3), None)]
        blocks += [_block(nn.Conv1d(a, b, 3, padding=1), 3) for a, b in hidden]
        blocks.append(_block(nn.Conv1d(512, 512, 3, padding=1), None))
        self.sequential = nn.Sequential(*blocks)
        self.fc = nn.Identity()

    def forward(self, x):
        out = self.sequential(x)
        return self.fc(out.reshape(x.shape[0], out.size(1) * out.size(2)))


class ClmrSimCLR(nn.Module):
    def __init__(self, encoder, projection_dim=64):
        super().__init__()
        self.encoder = encoder
        self.projector = _projector(512, projection_dim)


class ClmrLightning(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.model = ClmrSimCLR(encoder)


def randomise(module: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics far from the defaults; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return module.eval()


def lightning1_file(path: Path, module: nn.Module, hparams: dict, as_namespace: bool = True,
                    **extra) -> Path:
    """The dict Lightning 1.7 saves (hyper-parameters from argparse)."""
    ckpt = {"epoch": 3, "global_step": 120, "pytorch-lightning_version": "1.7.7",
            "state_dict": module.state_dict(), "loops": {"fit_loop": {"epoch_progress": {}}},
            "callbacks": {}, "optimizer_states": [], "lr_schedulers": [], "hparams_name": "args",
            "hyper_parameters": argparse.Namespace(**hparams) if as_namespace else dict(hparams),
            **extra}
    torch.save(ckpt, path)
    return path


def authors_encoder(geometry: dict | None = None, seed: int = 0) -> AuthorsSampleCNN:
    g = {**AUTHORS_HP, **(geometry or {})}
    torch.manual_seed(seed)
    return AuthorsSampleCNN(g["n_blocks"], g["n_channels"], g["output_size"], g["first_block_params"])
