"""ONNX export (vcmr/io/onnx_file.py, `vcmr export --format onnx`), run with onnxruntime."""
import json
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import vcmr
from vcmr.audio.io import write_wav
from vcmr.cli import main
from vcmr.io.model_file import save_model_file
from vcmr.io.onnx_file import OPSET, OnnxExportError, export_onnx

from embed_helpers import SR, music, stage2_checkpoint, tiny_checkpoint, tiny_model

ort = pytest.importorskip("onnxruntime")  # the vcmr[onnx] extra (CI installs it through .[all])
onnx = pytest.importorskip("onnx")


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def assert_close(got, want):
    """Within 1e-4 relative (to the largest value of the output)."""
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(np.abs(want).max()))


def reference(model, windows):
    """What PyTorch gives for (n, segment_samples) windows, by output name."""
    with torch.no_grad():
        emb = model.embed_segments(windows)
        out = {"embedding": emb.numpy()}
        if model.stage == "video":
            out["joint"] = model.embed_segments(windows, space="joint").numpy()
        if model.stage == "tagging":
            out["tag_probs"] = torch.sigmoid(model.net.head(emb)).numpy()
    return out


@pytest.mark.parametrize("stage, outputs", [("music", ["embedding"]), ("video", ["embedding", "joint"]),
                                            ("tagging", ["embedding", "tag_probs"])])
def test_onnx_matches_pytorch_for_batch_1_and_3(tmp_path, capsys, stage, outputs):
    # stage 2: the real LightningModule's checkpoint (its network needs the frame-feature size)
    ckpt = stage2_checkpoint(tmp_path) if stage == "video" else tiny_checkpoint(tmp_path / "m.ckpt", stage, seed=3)
    out = tmp_path / f"{stage}.onnx"
    assert main(["export", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    assert f"opset {OPSET}" in capsys.readouterr().out
    model = vcmr.load_model(ckpt, "cpu")
    sess = session(out)
    assert [o.name for o in sess.get_outputs()] == outputs
    assert [i.shape for i in sess.get_inputs()] == [["batch", model.segment_samples]]
    rng = np.random.default_rng(0)
    for batch in (1, 3):
        x = (0.3 * rng.standard_normal((batch, model.segment_samples))).astype(np.float32)
        got = dict(zip(outputs, sess.run(None, {"waveform": x})))
        want = reference(model, x)
        assert set(got) == set(want)
        for name in outputs:
            assert got[name].shape == want[name].shape and got[name].shape[0] == batch
            assert_close(got[name], want[name])
    # the control: another model's weights are far outside the tolerance
    other = reference(tiny_model("music", seed=4), x)["embedding"]
    with pytest.raises(AssertionError):
        assert_close(got["embedding"], other)


def test_metadata_and_fixed_length(tmp_path):
    model = tiny_model("tagging", tags=("rock", "calm"))
    names = export_onnx(model, tmp_path / "m.onnx")
    meta = session(tmp_path / "m.onnx").get_modelmeta().custom_metadata_map
    assert names == json.loads(meta["outputs"]) == ["embedding", "tag_probs"]
    assert (meta["format"], meta["stage"], meta["vcmr_version"]) == ("vcmr-onnx", "tagging", vcmr.__version__)
    assert (int(meta["sample_rate"]), int(meta["segment_samples"])) == (SR, model.segment_samples)
    assert json.loads(meta["tags"]) == ["rock", "calm"]
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == OPSET
    wrong = np.zeros((1, model.segment_samples + 1), np.float32)
    with pytest.raises(Exception, match="(?i)dimension|shape"):  # the length axis is fixed
        session(tmp_path / "m.onnx").run(None, {"waveform": wrong})


def docs_snippet() -> str:
    """The numpy-only example of docs/using-models.md, section "ONNX"."""
    text = (Path(__file__).parents[1] / "docs" / "using-models.md").read_text()
    section = text[text.index("## ONNX"):]
    return section[section.index("```python") + len("```python"):].split("```")[0]


def test_docs_example_windows_a_long_file_as_embed_does(tmp_path, monkeypatch):
    """The docs' recipe (numpy, soundfile, onnxruntime) on a file of 18.3 windows gives
    ``embed`` and ``predict_tags``; the model is exported from a .safetensors file."""
    model = tiny_model("tagging", seed=1, tags=("rock", "calm"))
    save_model_file(model, tmp_path / "m.safetensors")
    assert main(["export", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "model.onnx")]) == 0
    write_wav(tmp_path / "song.wav", music(2.5, SR, seed=2), SR)  # 40000 samples, windows of 2187
    monkeypatch.chdir(tmp_path)
    env = {}
    exec(docs_snippet(), env)  # noqa: S102 - the documented example itself
    audio, sr = sf.read(tmp_path / "song.wav", dtype="float32")
    want = model.embed(audio, sr)
    assert env["per_window"]["embedding"].shape == want.embeddings.shape == (19, model.embedding_size)
    assert_close(env["per_window"]["embedding"], want.embeddings)
    np.testing.assert_allclose(np.arange(env["n"]) * env["segment"] / env["rate"], want.starts)  # the docs' start times
    tags = model.predict_tags(audio, sr)
    assert env["tags"].keys() == tags.keys()
    assert_close(np.array(list(env["tags"].values())), np.array(list(tags.values())))


def test_onnx_out_refuses_links_fifos_and_keeps_the_old_file_on_failure(tmp_path, capsys, monkeypatch):
    model = tiny_model("music")
    save_model_file(model, tmp_path / "m.safetensors")
    (tmp_path / "elsewhere.onnx").write_bytes(b"not ours")
    os.symlink(tmp_path / "elsewhere.onnx", tmp_path / "link.onnx")
    os.mkfifo(tmp_path / "fifo.onnx")
    for name, said in (("link.onnx", "is a symbolic link"), ("fifo.onnx", "is a FIFO")):
        assert main(["export", str(tmp_path / "m.safetensors"), "--format", "onnx", "--out", str(tmp_path / name)]) == 1
        assert said in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(tmp_path / "fifo.onnx").st_mode)
    assert (tmp_path / "elsewhere.onnx").read_bytes() == b"not ours"

    def broken(*args, **kwargs):
        raise RuntimeError("exporter broke")
    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(OnnxExportError, match="exporter broke"):
        export_onnx(model, tmp_path / "elsewhere.onnx")
    assert (tmp_path / "elsewhere.onnx").read_bytes() == b"not ours"
    assert sorted(os.listdir(tmp_path)) == ["elsewhere.onnx", "fifo.onnx", "link.onnx", "m.safetensors"]


def test_onnx_export_errors_name_the_fix(tmp_path, capsys, monkeypatch):
    model = tiny_model("music")
    save_model_file(model, tmp_path / "m.safetensors")
    assert main(["export", str(tmp_path / "m.safetensors"), "--format", "onnx", "--hub_dir", str(tmp_path / "h")]) == 1
    assert "--out FILE.onnx" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the extra were not installed
    assert main(["export", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "m.onnx")]) == 1
    assert "pip install 'vcmr[onnx]'" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
