"""vcmr.load_model / embed / embed_song / embed_file / embed_video_features."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import vcmr
from vcmr.inference import segment_audio
from vcmr.audio.io import resample, write_wav
from vcmr.errors import CheckpointError, VcmrError
from vcmr.metrics.songs import segment_song, segment_starts

from embed_helpers import SR, TAGS, music, stage1_checkpoint, stage2_checkpoint, stage2_module, stage3_checkpoint, stage3_module

HEAVY = ("pytorch_lightning", "lightning", "av", "scenedetect", "transformers", "cv2")


@pytest.fixture(scope="session")
def ckpt1(tmp_path_factory):
    return stage1_checkpoint(tmp_path_factory.mktemp("embed_models"))


@pytest.fixture(scope="session")
def model1(ckpt1):
    return vcmr.load_model(ckpt1, device="cpu")


def test_public_api_is_small_and_core_only(ckpt1, tmp_path):
    assert sorted(vcmr.__all__) == sorted(["load_model", "embed_file", "__version__"])
    from vcmr.io.model_file import export_checkpoint
    export_checkpoint(ckpt1, tmp_path / "m.safetensors")
    code = (
        "import sys, numpy as np, vcmr\n"
        f"heavy = {HEAVY!r}\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in heavy], 'import vcmr'\n"
        f"for src in ({str(ckpt1)!r}, {str(tmp_path / 'm.safetensors')!r}):\n"
        "    m = vcmr.load_model(src, device='cpu')\n"
        "    e = m.embed(np.zeros(5000, np.float32), 16000)\n"
        "    assert e.embeddings.shape == (3, 64)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_attributes(model1):
    assert (model1.sample_rate, model1.segment_samples, model1.embedding_size) == (SR, 2187, 64)
    assert model1.stage == "music" and model1.joint_size is None and not model1.training


def test_same_output_as_training_module(ckpt1, model1):
    from vcmr.train.music import MusicModule
    ckpt = torch.load(ckpt1, map_location="cpu", weights_only=True)
    module = MusicModule(ckpt["hyper_parameters"]["config"])
    module.load_state_dict(ckpt["state_dict"])
    module.eval()
    x = torch.from_numpy(np.stack([music(2187 / SR, seed=s) for s in range(5)]))
    with torch.no_grad():
        expected = module(x)
    model1.batch_size = 8
    torch.testing.assert_close(model1.embed_segments(x), expected, rtol=0, atol=0)
    # and through embed(): 5 consecutive windows of one signal
    emb = model1.embed(x.reshape(-1).numpy(), SR).embeddings
    torch.testing.assert_close(torch.from_numpy(emb), expected, rtol=0, atol=0)


def test_segmentation_rule_and_timestamps(model1):
    seg = model1.segment_samples
    x = music(3 * seg / SR, seed=1)[: 2 * seg + 100]
    e = model1.embed(x, SR)
    np.testing.assert_allclose(e.starts, [0, seg / SR, 2 * seg / SR])
    np.testing.assert_allclose(e.ends, [seg / SR, 2 * seg / SR, len(x) / SR])
    last = np.zeros(seg, np.float32)
    last[:100] = x[2 * seg:]  # the partial last segment is zero-padded at the end
    np.testing.assert_allclose(e.embeddings[2], model1.embed_segments(last[None]).numpy()[0], atol=1e-6)
    assert len(model1.embed(x, SR, pad_last=False).starts) == 2
    e_half = model1.embed(x, SR, overlap=0.5)  # window k at round(k * seg / 2); the 4th reaches the end
    np.testing.assert_allclose(e_half.starts, np.array([0, 1094, 2187, 3280]) / SR)
    full = model1.embed(x, SR, pad_last=False).starts  # odd segment: the full windows still nest
    assert seg == 2187 and set(full) <= set(e_half.starts)
    short = model1.embed(x[:500], SR)
    assert short.embeddings.shape == (1, 64) and short.ends[0] == pytest.approx(500 / SR)
    np.testing.assert_allclose(model1.embed_song(x, SR), e.embeddings.mean(0), rtol=1e-6)


@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5, 0.9])
def test_embedding_cuts_songs_as_evaluation_does(model1, overlap):
    """Dropping the tail (pad_last=False) is evaluation's policy: then the embedding path and
    the song-level evaluation cut the same windows; padding the tail only adds a last one."""
    seg = model1.segment_samples
    x = music(4 * seg / SR, seed=9)[: 3 * seg + 701]
    windows, starts = segment_audio(x, seg, overlap, pad_last=False)
    segs, grid = segment_song(x, seg, [overlap])
    np.testing.assert_array_equal(windows, segs[grid[overlap]])
    np.testing.assert_array_equal(starts, segment_starts(len(x), seg, overlap))
    e = model1.embed(x, SR, overlap=overlap, pad_last=False)
    np.testing.assert_array_equal(np.round(e.starts * SR).astype(int), starts)
    padded = np.round(model1.embed(x, SR, overlap=overlap).starts * SR).astype(int)
    np.testing.assert_array_equal(padded[:-1], starts)
    assert padded[-1] + seg >= len(x) > starts[-1] + seg


def test_segment_audio_counts():
    for n, overlap, expected in [(10, 0.0, 1), (11, 0.0, 2), (20, 0.0, 2), (21, 0.5, 4), (25, 0.5, 4), (26, 0.5, 5)]:
        windows, starts = segment_audio(np.ones(n, np.float32), 10, overlap)
        assert len(windows) == expected, (n, overlap)
        assert starts[-1] + 10 >= n and (len(starts) == 1 or starts[-2] + 10 < n)


def test_batched_equals_one_at_a_time(model1):
    x = music(1.2, seed=3)
    results = []
    for bs in (1, 3, 64):
        model1.batch_size = bs
        results.append(model1.embed(x, SR, overlap=0.25).embeddings)
    model1.batch_size = 8
    for r in results[1:]:  # equal up to float32 rounding of differently blocked convolutions
        np.testing.assert_allclose(r, results[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("rate", [44100, 22050])
def test_resampling_from_common_rates(model1, rate):
    x16 = music(1.0, SR, seed=4)
    x_hi = resample(x16, SR, rate)
    e = model1.embed(x_hi, rate)
    # identical to resampling by hand, and close to embedding the 16 kHz original
    np.testing.assert_array_equal(e.embeddings, model1.embed(resample(x_hi, rate, SR), SR).embeddings)
    ref = model1.embed(x16, SR)
    assert e.embeddings.shape == ref.embeddings.shape
    cos = (e.embeddings * ref.embeddings).sum(1) / (np.linalg.norm(e.embeddings, axis=1) * np.linalg.norm(ref.embeddings, axis=1))
    assert cos.min() > 0.98, cos
    np.testing.assert_allclose(e.ends[-1], 1.0, atol=1e-3)


def test_multichannel_and_tensor_input(model1):
    x = music(0.5, seed=5)
    stereo = np.stack([x, 0.5 * x], axis=1)  # (samples, 2)
    mono = model1.embed(0.75 * x, SR).embeddings
    np.testing.assert_allclose(model1.embed(stereo, SR).embeddings, mono, atol=1e-6)
    np.testing.assert_allclose(model1.embed(torch.from_numpy(stereo.T.copy()), SR).embeddings, mono, atol=1e-6)


def test_embed_file_44k(model1, tmp_path):
    x = resample(music(1.0, SR, seed=6), SR, 44100)
    write_wav(tmp_path / "a.wav", x, 44100)
    e = vcmr.embed_file(tmp_path / "a.wav", model1)
    assert e.embeddings.shape == (8, 64)  # ceil(16000 / 2187)
    song = vcmr.embed_file(tmp_path / "a.wav", model1, song_level=True)
    np.testing.assert_allclose(song, e.embeddings.mean(0), rtol=1e-6)


def _cosine(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("subtype, dtype", [("PCM_16", "int16"), ("PCM_32", "int32"), ("PCM_U8", "uint8")])
def test_integer_pcm_arrays_embed_like_the_file(model1, tmp_path, subtype, dtype):
    """Issue 23 row 1: ``sr, x = scipy.io.wavfile.read(f); model.embed_song(x, sr)`` gave
    cosine 0.098 with ``embed_file(f)``; integer PCM is now scaled as the file reader does."""
    path = tmp_path / "a.wav"
    sf.write(path, 0.5 * music(1.0, SR, seed=7), SR, subtype=subtype)
    if dtype == "uint8":  # soundfile reads no uint8; scipy.io.wavfile gives the file's bytes
        x = (sf.read(path, dtype="int16")[0] // 256 + 128).astype(np.uint8)
    else:
        x = sf.read(path, dtype=dtype)[0]  # the array scipy.io.wavfile.read returns
    assert x.dtype == np.dtype(dtype)
    song_file = vcmr.embed_file(path, model1, song_level=True)
    assert _cosine(model1.embed_song(x, SR), song_file) > 0.9999
    assert _cosine(model1.embed_song(torch.from_numpy(x.astype(np.int32)) if dtype == "int32"
                                     else torch.from_numpy(x), SR), song_file) > 0.9999


def test_float16_bfloat16_converted_other_dtypes_refused(model1):
    """Issue 23 rows 1 and 12: a bf16 tensor gave a traceback; bool/complex/int64/object a
    silent cast. Half floats are converted exactly, the rest is a clear error."""
    x = music(0.5, seed=8)
    half = model1.embed(np.float16(x).astype(np.float32), SR).embeddings
    np.testing.assert_allclose(model1.embed(torch.from_numpy(x).half(), SR).embeddings, half, atol=1e-6)
    bf = torch.from_numpy(x).bfloat16()
    np.testing.assert_allclose(model1.embed(bf, SR).embeddings, model1.embed(bf.float(), SR).embeddings)
    for bad in (x > 0, x.astype(np.complex64), (x * 1000).astype(np.int64), np.array([x, x[:5]], dtype=object),
                torch.from_numpy(x > 0)):
        with pytest.raises(VcmrError, match="samples of type .*int16, int32 or uint8"):
            model1.embed(bad, SR)
    with pytest.raises(VcmrError, match="not an array of samples"):
        model1.embed([x, x[:5]], SR)


@pytest.mark.parametrize("rate", [True, False, 16000.0, "16000"])
def test_sample_rate_must_be_an_integer_not_a_bool(model1, rate):
    """Issue 23 row 15: ``sample_rate=True`` was taken as 1 Hz."""
    with pytest.raises(VcmrError, match="sample_rate must be a positive integer"):
        model1.embed(np.zeros(3000, np.float32), rate)


@pytest.mark.parametrize("bad, kwargs, match", [
    (np.zeros((2, 3, 100)), {}, "not a waveform"),
    (np.full(3000, np.nan), {}, "NaN"),
    (np.zeros(0), {}, "no samples"),
    (np.zeros(3000), {"overlap": 1.0}, "overlap"),
    (np.zeros(3000), {"space": "joint"}, "stage-2"),
    (np.zeros(3000), {"space": "clap"}, "unknown embedding space"),
])
def test_bad_input_errors(model1, bad, kwargs, match):
    with pytest.raises(VcmrError, match=match):
        model1.embed(bad, SR, **kwargs)
    with pytest.raises(VcmrError, match="sample_rate"):
        model1.embed(np.zeros(3000), 0)


def test_model_name_and_path_errors(tmp_path):
    with pytest.raises(CheckpointError, match="'vcmr-mtat' not found.*hf://ORG/NAME"):
        vcmr.load_model("vcmr-mtat")
    with pytest.raises(CheckpointError, match="not found"):
        vcmr.load_model(tmp_path / "missing.ckpt")
    with pytest.raises(CheckpointError, match="folder"):
        vcmr.load_model(tmp_path)


def test_checkpoint_of_another_format_version_is_refused(ckpt1, tmp_path):
    """load_model and the resume check name the file, the version found and what to do."""
    from vcmr.io.checkpoint import check_resume_checkpoint
    ckpt = torch.load(ckpt1, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["format_version"] == 2
    for version, said in ((None, "records no format version"), (1, "has format version 1")):
        hp = {k: v for k, v in ckpt["hyper_parameters"].items() if k != "format_version"}
        path = tmp_path / f"v{version}.ckpt"
        torch.save({**ckpt, "hyper_parameters": hp | ({"format_version": version} if version else {})}, path)
        with pytest.raises(CheckpointError, match=f"{path.name}'? {said}; this vcmr reads vcmr files "
                                                  f"of format version 2 only: retrain with this vcmr"):
            vcmr.load_model(path)
        with pytest.raises(CheckpointError, match=f"{path.name}'? {said}; .* resume only runs of this vcmr"):
            check_resume_checkpoint(path, "music")


def test_stage2_joint_space_matches_module(tmp_path_factory):
    path = stage2_checkpoint(tmp_path_factory.mktemp("video"))
    model, module = vcmr.load_model(path, device="cpu"), stage2_module()
    assert model.stage == "video" and model.joint_size == 128 and model.video_seconds == 1
    x = music(2187 * 3 / SR, seed=7)
    with torch.no_grad():
        expected_audio = module.net.embed_audio(torch.from_numpy(x.reshape(3, 2187)))
        v = torch.randn(4, 1, 8)
        expected_video = module.net.embed_video(v)
    np.testing.assert_allclose(model.embed(x, SR, space="joint").embeddings, expected_audio.numpy(), atol=1e-6)
    np.testing.assert_allclose(model.embed(x, SR).embeddings.shape, (3, 64))
    np.testing.assert_allclose(model.embed_video_features(v), expected_video.numpy(), atol=1e-6)
    np.testing.assert_allclose(model.embed_video_features(v[0].numpy()), expected_video[0].numpy(), atol=1e-6)
    with pytest.raises(VcmrError, match=r"\(1, 8\)"):
        model.embed_video_features(np.zeros((2, 16)))


def test_stage3_tags_match_module(tmp_path_factory):
    path = stage3_checkpoint(tmp_path_factory.mktemp("tagging"))
    model, module = vcmr.load_model(path, device="cpu"), stage3_module()
    assert model.tags == TAGS and model.stage == "tagging"
    x = music(2187 * 2 / SR, seed=8)
    with torch.no_grad():
        expected = torch.sigmoid(module(torch.from_numpy(x.reshape(2, 2187)))).mean(0)
    probs = model.predict_tags(x, SR)
    assert list(probs) == TAGS
    np.testing.assert_allclose(list(probs.values()), expected.numpy(), atol=1e-6)
    with pytest.raises(VcmrError, match="stage-2"):
        model.embed_video_features(np.zeros((1, 8)))
