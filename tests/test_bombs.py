"""Issue 23 row 7: memory bombs in model files, checkpoints and YAML configs are refused before
any memory is spent, with a short message (real crafted files, small on disk)."""
from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
import torch
from conftest import TINY_OVERRIDES
from safetensors import safe_open
from safetensors.torch import save_file

from vcmr.config import ConfigError, config_to_dict, load_config
from vcmr.config.loading import read_yaml
from vcmr.errors import CheckpointError, short_repr
from vcmr.inference import EmbeddingModel
from vcmr.io.checkpoint import load_encoder
from vcmr.io.model_file import load_model_file, save_model_file
from vcmr.models.stages import build

LOAD_AND_MEASURE = """
import resource, sys
from vcmr.io.model_file import load_model_file
try:
    load_model_file(sys.argv[1])
except Exception as e:
    print(type(e).__name__, e)
print("PEAK_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> Path:
    cfg = load_config("music", overrides=TINY_OVERRIDES)
    net = build("music", cfg)
    out = tmp_path_factory.mktemp("bombs") / "tiny.safetensors"
    save_model_file(EmbeddingModel("music", config_to_dict(cfg), net.state_dict()), out)
    return out


def with_config(src: Path, out: Path, **changes) -> Path:
    """A copy of model file ``src`` whose stored config has ``changes`` (tensors unchanged)."""
    with safe_open(str(src), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["config"])
    config.update(changes)
    save_file(tensors, str(out), metadata={**meta, "config": json.dumps(config)})
    return out


@pytest.mark.parametrize("channels, needle", [
    (2000, "does not match the configured architecture"),  # shapes checked on the meta device
    (20000, "over vcmr's cap of 2e+09"),  # the file: refused by its parameter count
])
def test_model_file_with_many_channels_is_refused_before_building(tiny_file, tmp_path, channels,
                                                                  needle):
    n_blocks = json.loads(safe_open(str(tiny_file), "pt").metadata()["config"])["n_blocks"]
    bomb = with_config(tiny_file, tmp_path / "bomb.safetensors", n_channels=[channels] * n_blocks)
    assert bomb.stat().st_size < 1_000_000
    r = subprocess.run([sys.executable, "-c", LOAD_AND_MEASURE, str(bomb)], capture_output=True,
                       text=True, timeout=600)
    assert "CheckpointError" in r.stdout and needle in r.stdout, r.stdout + r.stderr
    peak_mb = int(r.stdout.split("PEAK_KB")[1]) / 1024
    assert peak_mb < 1500, f"{peak_mb:.0f} MB peak while refusing the file"  # unfixed: 4.8 GB


@pytest.mark.parametrize("changes, needle", [
    ({"n_channels": [10**9]}, "over vcmr's cap of 65536"),
    ({"output_size": 10**9}, "over vcmr's cap of 65536"),
    ({"projection_dim": 10**9}, "over vcmr's cap of"),
])
def test_model_file_with_a_huge_size_is_refused(tiny_file, tmp_path, changes, needle):
    if "n_channels" in changes:
        n_blocks = json.loads(safe_open(str(tiny_file), "pt").metadata()["config"])["n_blocks"]
        changes = {"n_channels": changes["n_channels"] * n_blocks}
    bomb = with_config(tiny_file, tmp_path / "huge.safetensors", **changes)
    with pytest.raises(CheckpointError, match=needle):
        load_model_file(bomb)


def test_parameter_count_is_capped(tiny_file, tmp_path):
    """Every size under the cap, but together over 2e9 parameters: refused by count."""
    n_blocks = json.loads(safe_open(str(tiny_file), "pt").metadata()["config"])["n_blocks"]
    bomb = with_config(tiny_file, tmp_path / "many.safetensors", n_channels=[60000] * n_blocks)
    with pytest.raises(CheckpointError, match="over vcmr's cap of 2e"):
        load_model_file(bomb)


def shared_list_bomb() -> list:
    a = [0] * 10
    for _ in range(8):  # 10**9 values when expanded, a few hundred bytes pickled
        a = [a] * 10
    return a


def test_checkpoint_config_shared_list_bomb(tiny_file, tmp_path):
    with safe_open(str(tiny_file), "pt") as f:
        state = {"net." + k: f.get_tensor(k) for k in f.keys()}
        config = json.loads(f.metadata()["config"])
    config["n_channels"] = shared_list_bomb()
    ckpt = tmp_path / "bomb.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": {
        "stage": "music", "config": config, "format_version": 2}}, ckpt)
    assert ckpt.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as err:
            load_encoder(ckpt)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than 100000 values" in str(err.value)
    assert len(str(err.value)) < 1000
    assert peak < 200 * 2**20


def test_yaml_aliases_are_refused(tmp_path):
    f = tmp_path / "bomb.yaml"
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
              f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
              f"*{chr(97 + i)}, *{chr(97 + i)}]" for i in range(8)]
    lines += ["batch_size: *i", "n_channels: *i"]
    f.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match="YAML alias") as err:
            load_config("music", f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(f) in str(err.value)
    assert peak < 200 * 2**20


def test_yaml_without_aliases_still_loads(tmp_path):
    f = tmp_path / "ok.yaml"
    f.write_text("batch_size: 4\nn_channels: [8, 8]\n")
    assert read_yaml(f) == {"batch_size": 4, "n_channels": [8, 8]}


def test_error_messages_cut_the_bad_value(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config("music", overrides={"batch_size": "x" * 4_000_000})
    assert len(str(err.value)) < 400
    assert len(short_repr(list(range(10**6)))) <= 203
    assert "bits" in short_repr(10**5000)


def test_loader_errors_cut_the_bad_value(tiny_file, tmp_path):
    """A model file's stage (stored metadata) of 1 MB: the error shows 200 characters of it."""
    with safe_open(str(tiny_file), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    out = tmp_path / "stage.safetensors"
    save_file(tensors, str(out), metadata={**meta, "stage": "x" * 1_000_000})
    with pytest.raises(CheckpointError, match="unknown stage") as err:
        load_model_file(out)
    assert len(str(err.value)) < 600
