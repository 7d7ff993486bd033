"""Per-second audio <-> video similarity timelines (``vcmr retrieve --explain``).

A tiny stage-2 network is trained here (about 100 steps, a few seconds on one core) on two
synthetic songs and their synthetic music videos (the project's generator, written as real
files and decoded), so that its audio and video branches agree on which song plays. The
timeline must then be high where the pictures (or the music) belong to the song and low where
they belong to the other, second by second; and every point must equal the definition
(for a 1-second model: audio second s against feature row s), so a shifted window fails.
"""
import numpy as np
import pytest
import torch

from vcmr.audio.io import resample
from vcmr.config import config_from_dict
from vcmr.errors import VcmrError
from vcmr.evaluate.explain import (audio_window_starts, explanation_name, similarity_timeline,
                                   window_rows)
from vcmr.inference import EmbeddingModel
from vcmr.losses import cross_modal_nt_xent
from vcmr.models.stages import build

cv2 = pytest.importorskip("cv2")
pytest.importorskip("av")

SR, DUR = 6561, 12  # a 1-second model: SampleCNN of 3 * 3**7 samples at 6561 Hz
HALF = DUR // 2


def tiny_config(feature_dim):
    return config_from_dict("video", {
        "sample_rate": SR, "audio_length": 6561, "n_blocks": 7, "n_channels": [8, 8, 16, 16, 16, 32, 32],
        "first_block_params": {"out_channels": 8, "conv_size": 3}, "output_size": 32,
        "feature_dim": feature_dim, "lstm_layers": 1, "lstm_hidden": 16, "video_hidden": 32,
        "projection_dim": 16, "freeze_blocks": 0})


def synthetic_song(tags, seed, tmp):
    """(audio at SR, (DUR, 144) per-second frame features) of a synthetic music video: frames
    decoded from the written file, shrunk to 8x6 pixels, averaged over each second."""
    from vcmr.demo.synth.music import render_music
    from vcmr.demo.synth.video import decode_frames, write_music_video
    clip = render_music(tags, DUR, 16000, seed)
    path = write_music_video(tmp / f"song{seed}.mp4", clip, [HALF], size=(32, 24), fps=4,
                             with_audio=False, seed=seed)
    frames, fps = decode_frames(path)
    small = np.stack([cv2.resize(f, (8, 6), interpolation=cv2.INTER_AREA) for f in frames])
    per_frame = small.reshape(len(frames), -1)[: DUR * int(fps)] / 255.0
    feats = per_frame.reshape(DUR, int(fps), -1).mean(1).astype(np.float32)
    return resample(clip.audio, 16000, SR), feats


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Two songs and a stage-2 EmbeddingModel trained to match each song's audio to its video."""
    tmp = tmp_path_factory.mktemp("explain")
    songs = [synthetic_song(["piano", "slow", "quiet"], 1, tmp),
             synthetic_song(["drums", "fast", "loud"], 2, tmp)]
    torch.manual_seed(0)
    cfg = tiny_config(songs[0][1].shape[1])
    net = build("video", cfg)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    rng = np.random.default_rng(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a network this small trains fastest on one thread, loaded or not
    try:
        for _ in range(100):
            pick = [(i % 2, int(rng.integers(0, DUR))) for i in range(16)]
            x = torch.as_tensor(np.stack([songs[k][0][s * SR:(s + 1) * SR] for k, s in pick]))
            v = torch.as_tensor(np.stack([songs[k][1][s:s + 1] for k, s in pick]))
            loss = cross_modal_nt_xent(net.embed_audio(x), net.embed_video(v))
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return EmbeddingModel("video", cfg, net.state_dict()), songs


def test_window_rule_centres_each_second_and_stays_inside():
    # odd n: rows centred on second s; shifted inward at both ends
    assert window_rows(7, 3).tolist() == [0, 0, 1, 2, 3, 4, 4]
    assert window_rows(5, 1).tolist() == [0, 1, 2, 3, 4]
    # even n: the extra row after second s (window centre = end of second s)
    assert window_rows(8, 2).tolist() == [0, 1, 2, 3, 4, 5, 6, 6]
    assert window_rows(10, 6).tolist() == [0, 0, 0, 1, 2, 3, 4, 4, 4, 4]
    # audio: centred on the video window's centre, 1 s = 100 samples here
    rows = window_rows(5, 1)
    assert audio_window_starts(rows, 1, 500, 100, 100).tolist() == [0, 100, 200, 300, 400]
    assert audio_window_starts(rows, 1, 500, 200, 100).tolist() == [0, 50, 150, 250, 300]
    assert audio_window_starts(window_rows(4, 2), 2, 400, 100, 100).tolist() == [50, 150, 250, 250]
    with pytest.raises(VcmrError, match="at least 3 seconds"):
        window_rows(2, 3)


def test_timeline_is_high_on_the_matching_half_and_low_on_the_other(toy):
    model, ((a_audio, a_feat), (b_audio, b_feat)) = toy
    # the video's second half belongs to the other song
    mixed_video = np.concatenate([a_feat[:HALF], b_feat[HALF:]])
    tl = similarity_timeline(model, a_audio, SR, mixed_video)
    assert tl.seconds.tolist() == list(range(DUR))
    assert tl.similarity[:HALF].min() > tl.similarity[HALF:].max() + 0.2, tl.similarity
    # the same with the music switching songs and the pictures staying
    mixed_audio = np.concatenate([a_audio[:HALF * SR], b_audio[HALF * SR:]])
    tl = similarity_timeline(model, mixed_audio, SR, a_feat)
    assert tl.similarity[:HALF].min() > tl.similarity[HALF:].max() + 0.2, tl.similarity
    # control: music and pictures switch together -> high everywhere
    tl = similarity_timeline(model, mixed_audio, SR, mixed_video)
    assert tl.similarity.min() > 0.5, tl.similarity


def test_each_point_is_audio_second_s_against_feature_row_s(toy):
    model, ((a_audio, a_feat), (b_audio, b_feat)) = toy
    audio = np.concatenate([a_audio[:HALF * SR], b_audio[HALF * SR:]])
    feats = np.concatenate([b_feat[:3], a_feat[3:]])
    tl = similarity_timeline(model, audio, SR, feats)
    a = model.embed_segments(audio.reshape(DUR, SR), space="joint").numpy()
    v = model.embed_video_features(feats[:, None, :])
    expected = (a * v).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(v, axis=1)
    np.testing.assert_allclose(tl.similarity, expected, atol=1e-5)
    assert tl.window_start.tolist() == list(range(DUR))
    # audio at another sample rate is resampled to the model's first; N = the shorter input
    tl2 = similarity_timeline(model, resample(audio, SR, 16000), 16000, feats[:10])
    assert len(tl2.seconds) == 10
    np.testing.assert_allclose(tl2.similarity, expected[:10], atol=0.05)


def test_bad_inputs_name_the_problem(toy):
    model, ((a_audio, a_feat), _) = toy
    with pytest.raises(VcmrError, match=r"\(seconds, 144\)"):
        similarity_timeline(model, a_audio, SR, a_feat[:, :10])
    with pytest.raises(VcmrError, match="NaN"):
        similarity_timeline(model, a_audio * np.nan, SR, a_feat)
    with pytest.raises(VcmrError, match="sample_rate"):
        similarity_timeline(model, a_audio, 0, a_feat)


def test_file_names_keep_only_safe_characters():
    assert explanation_name("my song", "a/b:c") == "my_song_a_b_c"
    assert explanation_name("..", "x" * 200) == "_" + "_" + "x" * 80
