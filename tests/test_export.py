"""Portable .safetensors model files."""
import json
import os
import stat

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import vcmr
from vcmr.audio.io import write_wav
from vcmr.cli import main
from vcmr.errors import CheckpointError
from vcmr.io.checkpoint import checkpoint_hparams, load_encoder
from vcmr.io.model_file import ModelFileError, export_checkpoint, read_model_file, save_model_file

from embed_helpers import SR, TAGS, music, tiny_model, stage1_checkpoint, stage2_checkpoint, stage3_checkpoint


@pytest.fixture(scope="session")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("embed_models")


@pytest.fixture(scope="session")
def exported1(root):
    return export_checkpoint(stage1_checkpoint(root), root / "m1.safetensors"), root / "m1.safetensors"


@pytest.mark.parametrize("stage", ["music", "video", "tagging"])
def test_export_then_load_gives_identical_embeddings(root, stage):
    ckpt = {"music": stage1_checkpoint, "video": stage2_checkpoint, "tagging": stage3_checkpoint}[stage](root)
    out = root / f"{stage}.safetensors"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0
    a, b = vcmr.load_model(ckpt, "cpu"), vcmr.load_model(out, "cpu")
    x = music(0.6, 44100, seed=11)
    np.testing.assert_array_equal(a.embed(x, 44100, overlap=0.5).embeddings, b.embed(x, 44100, overlap=0.5).embeddings)
    assert (b.stage, b.sample_rate, b.segment_samples, b.embedding_size, b.tags) == \
        (stage, a.sample_rate, a.segment_samples, a.embedding_size, a.tags)
    if stage == "video":
        v = np.random.default_rng(0).normal(size=(3, 1, 8)).astype(np.float32)
        np.testing.assert_array_equal(a.embed_video_features(v), b.embed_video_features(v))
        np.testing.assert_array_equal(a.embed(x, 44100, space="joint").embeddings, b.embed(x, 44100, space="joint").embeddings)
    if stage == "tagging":
        assert a.predict_tags(x, 44100) == b.predict_tags(x, 44100)


def test_metadata(exported1, root):
    model, path = exported1
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == "vcmr" and meta["stage"] == "music" and meta["vcmr_version"] == vcmr.__version__
    assert (meta["sample_rate"], meta["audio_length"]) == ("16000", "2187")
    assert json.loads(meta["config"])["n_channels"] == [16, 16, 32, 32, 32, 64]
    assert {k.split(".")[0] for k in keys} == {"encoder", "projector"}
    export_checkpoint(stage3_checkpoint(root), root / "s3.safetensors")
    _, meta3 = read_model_file(root / "s3.safetensors")
    assert json.loads(meta3["tags"]) == TAGS


def test_truncated_or_random_file_is_a_clear_error(exported1, tmp_path):
    _, path = exported1
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="not a readable safetensors model file"):
        vcmr.load_model(tmp_path / "cut.safetensors")
    (tmp_path / "noise.ckpt").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError, match="cannot be read"):
        vcmr.load_model(tmp_path / "noise.ckpt")


def test_foreign_safetensors_file_is_rejected(tmp_path):
    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelFileError, match="not a vcmr model"):
        vcmr.load_model(tmp_path / "other.safetensors")


def _rewrite(src, dst, meta_edit=None, drop=None):
    sd, meta = read_model_file(src)
    if meta_edit:
        meta = meta_edit(dict(meta))
    if drop:
        sd = {k: v for k, v in sd.items() if not k.startswith(drop)}
    save_file(sd, str(dst), metadata=meta)
    return dst


def test_architecture_mismatch_is_a_clear_error(exported1, tmp_path):
    _, path = exported1

    def wider(meta):
        cfg = json.loads(meta["config"])
        cfg["n_channels"] = [16, 16, 32, 32, 64, 64]
        meta["config"] = json.dumps(cfg)
        return meta
    with pytest.raises(CheckpointError, match="does not match the configured architecture"):
        vcmr.load_model(_rewrite(path, tmp_path / "wide.safetensors", wider))
    # a stage-1 file without any projector weights is an encoder (CLMR's encoder-only files):
    # it loads for embedding, with a notice, and has no projector
    assert not vcmr.load_model(_rewrite(path, tmp_path / "noproj.safetensors", drop="projector.")).has_projector
    with pytest.raises(CheckpointError, match="weight 'projector.2.weight' is missing"):
        vcmr.load_model(_rewrite(path, tmp_path / "halfproj.safetensors", drop="projector.2."))
    with pytest.raises(ModelFileError, match="disagrees"):
        vcmr.load_model(_rewrite(path, tmp_path / "sr.safetensors", lambda m: {**m, "sample_rate": "22050"}))


def test_model_file_of_another_format_version_is_refused(exported1, tmp_path):
    _, path = exported1
    assert read_model_file(path)[1]["format_version"] == "2"
    edits = {"1": lambda m: {**m, "format_version": "1"},
             None: lambda m: {k: v for k, v in m.items() if k != "format_version"}}
    for version, edit in edits.items():
        bad = _rewrite(path, tmp_path / f"v{version}.safetensors", edit)
        said = f"has format version {version}" if version else "records no format version"
        with pytest.raises(ModelFileError, match=f"v{version}.safetensors'? {said}; this vcmr reads .* "
                                                 f"version 2 only: export it again with this vcmr"):
            vcmr.load_model(bad)


def test_export_command_errors(tmp_path, capsys):
    assert main(["export", str(tmp_path / "none.ckpt"), "--out", str(tmp_path / "o.safetensors")]) == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()


def test_export_out_refuses_a_symlink_and_a_fifo_and_takes_the_longest_legal_name(root, tmp_path, capsys):
    ckpt = stage1_checkpoint(root)
    (tmp_path / "elsewhere.safetensors").write_bytes(b"not ours")
    os.symlink(tmp_path / "elsewhere.safetensors", tmp_path / "link.safetensors")
    os.mkfifo(tmp_path / "fifo.safetensors")
    for name, said in (("link.safetensors", "is a symbolic link"), ("fifo.safetensors", "is a FIFO")):
        assert main(["export", str(ckpt), "--out", str(tmp_path / name)]) == 1
        assert said in capsys.readouterr().err
    assert os.path.islink(tmp_path / "link.safetensors") and stat.S_ISFIFO(os.lstat(tmp_path / "fifo.safetensors").st_mode)
    assert (tmp_path / "elsewhere.safetensors").read_bytes() == b"not ours"
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    long = tmp_path / ("m" * (name_max - len(".safetensors")) + ".safetensors")
    assert main(["export", str(ckpt), "--out", str(long)]) == 0
    assert vcmr.load_model(long, "cpu").stage == "music"
    assert sorted(os.listdir(tmp_path)) == sorted([long.name, "elsewhere.safetensors", "link.safetensors", "fifo.safetensors"])
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_exported_file_mode_follows_the_umask(tmp_path, umask, mode):
    """Issue 23 row 15: exported .safetensors files were 0600 under umask 022 (safetensors
    writes its own 0600 file over the temporary); the mode now follows the umask."""
    old = os.umask(umask)
    try:
        out = save_model_file(tiny_model("music"), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


@pytest.mark.parametrize("key, value, said", [
    ("encoder.blocks.2.0.weight", float("nan"), "holds NaN or infinite values"),
    ("projector.0.weight", float("inf"), "holds NaN or infinite values"),
    ("running_var", -1.0, "is a BatchNorm running variance with negative entries"),
])
def test_nan_weights_or_negative_variance_refused_at_load(exported1, tmp_path, capsys, key, value, said):
    """Issue 23 row 9: such a model wrote all-NaN embeddings with exit 0; every load (model
    file, checkpoint, `vcmr embed`) now refuses it, naming the file and the first bad tensor."""
    _, path = exported1
    sd, meta = read_model_file(path)
    name = key if key in sd else next(k for k in sd if k.endswith(key))
    sd[name] = sd[name].clone()
    sd[name].view(-1)[1] = value
    bad = tmp_path / "bad.safetensors"
    save_file(sd, str(bad), metadata=meta)
    message = f"bad.safetensors'?: the weight '{name}' {said}"
    with pytest.raises(CheckpointError, match=message):
        vcmr.load_model(bad)
    ckpt = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in sd.items()},
                "hyper_parameters": checkpoint_hparams("music", json.loads(meta["config"]), None)}, ckpt)
    with pytest.raises(CheckpointError, match=f"bad.ckpt'?: the weight '{name}' {said}"):
        vcmr.load_model(ckpt)
    write_wav(tmp_path / "a.wav", music(1.0), SR)
    out = tmp_path / "e.npz"
    assert main(["embed", str(tmp_path / "a.wav"), "--ckpt", str(bad), "--out", str(out)]) == 1
    assert said in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("edit, said", [
    (lambda c: {**c, "n_channels": [-c["n_channels"][0]] + c["n_channels"][1:]},
     r"'n_channels\[0\]' must be a positive integer, got -16"),
    (lambda c: {**c, "output_size": -64}, "'output_size' must be a positive integer, got -64"),
    (lambda c: list(c), "must be a mapping of keys to values, got a list"),
    (lambda c: "music", "must be a mapping of keys to values, got a str"),
])
def test_stored_config_with_bad_sizes_or_not_a_mapping(exported1, tmp_path, capsys, edit, said):
    """Issue 23 row 12: negative n_channels / output_size, or a stored config that is a list or
    a string, gave tracebacks (torch's negative dimension, ``dict()``, ``asdict()``); now a
    CheckpointError from every loader and exit 1 from `vcmr embed`."""
    _, path = exported1
    bad = _rewrite(path, tmp_path / "bad.safetensors",
                   lambda m: {**m, "config": json.dumps(edit(json.loads(m["config"])))})
    with pytest.raises(CheckpointError, match=f"bad.safetensors'?: its stored architecture config is invalid: .*{said}"):
        vcmr.load_model(bad)
    sd, meta = read_model_file(path)
    ckpt = tmp_path / "bad.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in sd.items()},
                "hyper_parameters": checkpoint_hparams("music", edit(json.loads(meta["config"])), None)}, ckpt)
    with pytest.raises(CheckpointError, match=said):
        vcmr.load_model(ckpt)
    with pytest.raises(CheckpointError, match=said):  # the stage-1 encoder that stages 2 and 3 start from
        load_encoder(ckpt)
    write_wav(tmp_path / "a.wav", music(1.0), SR)
    assert main(["embed", str(tmp_path / "a.wav"), "--ckpt", str(bad), "--out", str(tmp_path / "e.npz")]) == 1
    assert "Traceback" not in capsys.readouterr().err
