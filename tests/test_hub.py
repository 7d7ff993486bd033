"""Hugging Face Hub: `vcmr export --hub-dir`, hf://ORG/NAME[@REVISION] through huggingface_hub's
cache, offline. Nothing here contacts a server: the cache is filled by the test in the layout
huggingface_hub documents (https://huggingface.co/docs/huggingface_hub/guides/manage-cache:
blobs/<sha256>, snapshots/<commit>/<file> -> blob, refs/<revision> holding the commit), the
subprocesses run with HF_HUB_OFFLINE=1 and HF_ENDPOINT on a closed local port."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

import vcmr
from vcmr.audio.io import read_audio, write_wav
from vcmr.cli import main
from vcmr.errors import CheckpointError
from vcmr.io.checkpoint import checkpoint_metrics
from vcmr.io.hub import HubError

from embed_helpers import music, stage1_checkpoint, stage3_checkpoint

pytest.importorskip("huggingface_hub")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(scope="module")
def hub_dir(root):
    d = root / "vcmr-tiny-tagger"
    assert main(["export", str(stage3_checkpoint(root)), "--hub-dir", str(d)]) == 0
    return d


def fill_cache(cache, repo: str, folder, commit: str = COMMIT, refs=("main",)) -> None:
    """Put every file of ``folder`` into a Hugging Face cache as revision ``commit``."""
    from huggingface_hub.file_download import repo_folder_name
    base = cache / repo_folder_name(repo_id=repo, repo_type="model")
    for f in folder.iterdir():
        data = f.read_bytes()
        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = base / "snapshots" / commit / f.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (base / "refs").mkdir(exist_ok=True)
        (base / "refs" / ref).write_text(commit)


def offline_env(cache) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache),
            "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_DISABLE_TELEMETRY": "1"}


def test_hub_dir_has_the_files_the_hub_expects(hub_dir, root):
    assert sorted(p.name for p in hub_dir.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    card = (hub_dir / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "vcmr" and front["license"] == "mit" and "music-tagging" in front["tags"]
    for part in ("## Training data", "dataset: magnatagatune", "## Licence", "## Citation",
                 "On the Role of Visual Context in Enriching Music Representations", 'hf://ORG/vcmr-tiny-tagger'):
        assert part in card, part
    assert "## Training metrics" not in card and "## HEAR" not in card  # the checkpoint has none
    cfg = json.loads((hub_dir / "config.json").read_text())
    model = vcmr.load_model(stage3_checkpoint(root), "cpu")
    assert (cfg["stage"], cfg["sample_rate"], cfg["tags"]) == ("tagging", str(model.sample_rate), model.tags)
    assert cfg["config"]["output_size"] == model.embedding_size


def test_hub_dir_loads_back_with_one_call(hub_dir, root):
    a, b = vcmr.load_model(stage3_checkpoint(root), "cpu"), vcmr.load_model(hub_dir, "cpu")
    x = music(0.5, 22050, seed=4)
    np.testing.assert_array_equal(a.embed(x, 22050).embeddings, b.embed(x, 22050).embeddings)
    assert a.predict_tags(x, 22050) == b.predict_tags(x, 22050)


def test_metrics_from_a_trained_checkpoint_reach_the_card(root):
    ckpt = stage1_checkpoint(root)
    metrics = checkpoint_metrics(ckpt)
    assert metrics["global_step"] == 1 and "epoch" in metrics
    d = root / "stage1-hub"
    assert main(["export", str(ckpt), "--hub-dir", str(d), "--license", "cc-by-4.0"]) == 0
    card = (d / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "global step 1" in card and "| best Valid/loss |" in card
    assert json.loads((d / "config.json").read_text())["metrics"] == metrics


@pytest.mark.slow  # two fresh Python processes (about 30 s on a loaded 2-core machine)
def test_hf_uri_loads_offline_from_the_cache_in_a_fresh_process(hub_dir, root, tmp_path):
    """vcmr.load_model('hf://...') and `vcmr embed --ckpt hf://...@REV`, HF_HUB_OFFLINE=1."""
    cache = tmp_path / "hf"
    fill_cache(cache, "vcmr-test/tiny-tagger", hub_dir, refs=("main", "v1"))
    wav = tmp_path / "a.wav"
    write_wav(wav, music(0.5, 16000, seed=5), 16000)
    code = ("import sys, vcmr, numpy as np; x = np.load(sys.argv[1]); "
            "xs = [vcmr.load_model(s, 'cpu').embed_song(x, 16000) for s in sys.argv[2:]]; "
            "assert all(np.array_equal(xs[0], e) for e in xs); print(vcmr.load_model(sys.argv[2]).source)")
    np.save(tmp_path / "x.npy", music(0.5, 16000, seed=5))
    env = offline_env(cache)
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy"), "hf://vcmr-test/tiny-tagger",
                        "hf://vcmr-test/tiny-tagger@v1", f"hf://vcmr-test/tiny-tagger@{COMMIT}"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "hf://vcmr-test/tiny-tagger" in r.stdout
    out = tmp_path / "emb.npz"
    r = subprocess.run([sys.executable, "-m", "vcmr.cli", "embed", str(wav), "--ckpt",
                        "hf://vcmr-test/tiny-tagger@v1", "--out", str(out), "--quiet", "--song-level"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    expected = vcmr.load_model(hub_dir, "cpu").embed_song(*read_audio(wav))
    np.testing.assert_allclose(np.load(out)["embedding"][0], expected, rtol=1e-6)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """In-process offline mode: huggingface_hub reads these at import, so set its constants."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    return tmp_path / "hf"


def test_offline_errors_say_what_to_do(offline_cache, hub_dir):
    with pytest.raises(HubError, match="not in the Hugging Face cache.*offline"):
        vcmr.load_model("hf://vcmr-test/never-downloaded")
    fill_cache(offline_cache, "vcmr-test/tiny-tagger", hub_dir)
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        vcmr.load_model("hf://vcmr-test/tiny-tagger@v2")  # a revision never fetched
    assert vcmr.load_model("hf://vcmr-test/tiny-tagger", "cpu").tags is not None
    for bad in ("hf://", "hf://just-a-name", "hf://org/name@", "hf://org/na me"):
        with pytest.raises(HubError, match="hf://ORG/NAME"):
            vcmr.load_model(bad)


def test_a_folder_without_model_file_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="folder without model.safetensors"):
        vcmr.load_model(tmp_path)


# ------------------------------------------------------------------------------ CLIP weights
def test_clip_choice_path_wins_offline_uses_the_cache_online_downloads_the_pinned_revision():
    from vcmr.prepare.frame_encoders import CLIP_DEFAULT_SOURCE as SRC, CLIP_REVISION as REV, clip_attempts
    assert clip_attempts("/models/clip", offline=False) == [("/models/clip", None, True)]
    assert clip_attempts(None, offline=True) == [(SRC, REV, True), (SRC, None, True)]
    assert clip_attempts(None, offline=False) == [(SRC, REV, True), (SRC, None, True), (SRC, REV, False)]
    assert len(REV) == 40 and int(REV, 16) >= 0


@pytest.mark.parametrize("var", ["HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"])
def test_offline_is_read_from_the_environment_when_needed(monkeypatch, var):
    from huggingface_hub import constants
    from vcmr.prepare.frame_encoders import hub_offline
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert not hub_offline()
    monkeypatch.setenv(var, "1")
    assert hub_offline()


def _tiny_clip(folder):
    pytest.importorskip("transformers")
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=32, patch_size=8, projection_dim=512)
    CLIPVisionModelWithProjection(cfg).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_clip_offline_from_the_cache_or_a_clear_message(offline_cache, tmp_path, monkeypatch):
    from vcmr.prepare.frame_encoders import (CLIP_DEFAULT_SOURCE, CLIP_REVISION, FrameEncoderError,
                                             build_frame_encoder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FrameEncoderError, match="offline .* not in the Hugging Face cache.*frame_encoder_path"):
        build_frame_encoder("clip", None, "cpu", batch_size=1)
    tiny = _tiny_clip(tmp_path / "tiny_clip")
    fill_cache(offline_cache, CLIP_DEFAULT_SOURCE, tiny, commit=CLIP_REVISION, refs=())
    enc = build_frame_encoder("clip", None, "cpu", batch_size=1)  # the pinned revision, no ref needed
    assert (enc.dim, enc.crop_size, enc.info["revision"]) == (512, 32, CLIP_REVISION)
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    np.testing.assert_allclose(enc.encode(frames), build_frame_encoder("clip", str(tiny), "cpu", 1).encode(frames),
                               rtol=1e-6)
    with pytest.raises(FrameEncoderError, match="holds no CLIP model"):
        build_frame_encoder("clip", str(tmp_path), "cpu", batch_size=1)  # --frame_encoder_path wins


def test_clip_cache_filled_by_hand_before_pinning_still_works(offline_cache, tmp_path, monkeypatch):
    from vcmr.prepare.frame_encoders import CLIP_DEFAULT_SOURCE, build_frame_encoder
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fill_cache(offline_cache, CLIP_DEFAULT_SOURCE, _tiny_clip(tmp_path / "c"), commit="f" * 40, refs=("main",))
    enc = build_frame_encoder("clip", None, "cpu", batch_size=1)
    assert enc.info["revision"] is None and enc.dim == 512


def test_hub_dir_with_files_is_refused_unless_overwrite(root, tmp_path, capsys):
    ckpt = stage3_checkpoint(root)
    d = tmp_path / "my-model"
    d.mkdir()
    mine = {"README.md": "# my own notes\n", "config.json": '{"mine": true}\n', "keep.txt": "x"}
    for name, text in mine.items():
        (d / name).write_text(text)
    assert main(["export", str(ckpt), "--hub-dir", str(d)]) == 1
    err = capsys.readouterr().err
    assert "is not empty (it holds README.md, config.json, keep.txt)" in err and "--overwrite" in err
    assert {p.name: p.read_text() for p in d.iterdir()} == mine
    out = tmp_path / "m.safetensors"  # both targets are checked before either is written
    assert main(["export", str(ckpt), "--out", str(out), "--hub-dir", str(d)]) == 1
    assert not out.exists()
    assert main(["export", str(ckpt), "--hub-dir", str(d), "--overwrite"]) == 0
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json", "keep.txt", "model.safetensors"]
    assert (d / "keep.txt").read_text() == "x" and "library_name: vcmr" in (d / "README.md").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(ckpt), "--hub-dir", str(empty)]) == 0
