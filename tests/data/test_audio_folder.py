import numpy as np
import pytest
import soundfile as sf
import torch

from vcmr.data.audio_folder import AudioFolder, collate_skip_bad, list_split, read_excerpt, split_of
from vcmr.errors import VcmrError
from vcmr.demo.synth.music import render_music
from vcmr.demo.synth.tags import random_tags


def make_folder(root, n=10, seconds=1.0, sr=22050):
    rng = np.random.default_rng(0)
    for i in range(n):
        clip = render_music(random_tags(rng), seconds, sr, seed=i)
        sub = root / f"album{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(str(sub / f"song{i}.flac"), clip.audio, sr)
    return root


def test_split_is_deterministic_disjoint_and_stable(tmp_path):
    make_folder(tmp_path, n=20, seconds=0.2)
    train, valid = list_split(tmp_path, "train", 0.1), list_split(tmp_path, "valid", 0.1)
    assert set(train).isdisjoint(valid) and len(train) + len(valid) == 20 and len(valid) >= 2
    before = {p.relative_to(tmp_path).as_posix(): split_of(p.relative_to(tmp_path).as_posix(), 0.5)
              for p in train + valid}
    sf.write(str(tmp_path / "new.wav"), np.zeros(100, np.float32), 16000)
    after = {k: split_of(k, 0.5) for k in before}
    assert before == after  # adding a file moves no other file


def test_items_are_mono_resampled_excerpts(tmp_path):
    make_folder(tmp_path, n=6, seconds=1.0, sr=22050)
    ds = AudioFolder(tmp_path, "train", sample_rate=16000, excerpt_length=4000, valid_fraction=0.1, seed=1)
    x = ds[0]
    assert x.shape == (4000,) and x.dtype == torch.float32 and x.abs().max() > 0.01
    assert torch.equal(ds[0], x)  # same (seed, epoch, index) -> same excerpt
    ds.epoch = 1
    assert not torch.equal(ds[0], x)  # a new epoch draws a new position


def test_short_files_are_zero_padded(tmp_path):
    make_folder(tmp_path, n=4, seconds=0.1, sr=16000)
    ds = AudioFolder(tmp_path, "all", sample_rate=16000, excerpt_length=3200)
    x = ds[0]
    assert x.shape == (3200,) and torch.all(x[1700:] == 0) and x[:1600].abs().max() > 0


def test_min_samples_leaves_short_files_out(tmp_path):
    make_folder(tmp_path, n=4, seconds=0.1, sr=16000)
    assert len(AudioFolder(tmp_path, "all", 16000, 3200, min_samples=3200)) == 0


def test_unreadable_file_is_skipped_with_warning(tmp_path):
    make_folder(tmp_path, n=3, seconds=0.3)
    (tmp_path / "broken.mp3").write_bytes(b"\x00garbage")
    ds = AudioFolder(tmp_path, "all", 16000, 2000)
    idx = [i for i, f in enumerate(ds.files) if f.name == "broken.mp3"][0]
    with pytest.warns(UserWarning, match="broken.mp3"):
        item = ds[idx]
    assert item is None
    batch = collate_skip_bad([ds[0], item, ds[1]])
    assert batch.shape == (2, 2000)


def test_empty_or_missing_folder_errors(tmp_path):
    with pytest.raises(VcmrError, match="does not exist"):
        list_split(tmp_path / "nope", "train")
    with pytest.raises(VcmrError, match=r"no audio files found.*\.wav"):
        list_split(tmp_path, "train")


def test_non_utf8_names_split_by_their_bytes(tmp_path):
    """A name that is not valid UTF-8 hashes its raw bytes; UTF-8 names hash as they always did."""
    import hashlib
    import os
    from vcmr.data.audio_folder import list_split
    from vcmr.data.splits import hash_fraction as _hash01
    for name in ("clip00.wav", "sub/é-ü.wav"):
        assert _hash01(name) == int(hashlib.md5(name.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    odd = os.fsdecode(b"caf\xe9.wav")
    assert _hash01(odd) == int(hashlib.md5(b"caf\xe9.wav").hexdigest()[:8], 16) / 0xFFFFFFFF
    for i in range(4):
        (tmp_path / f"s{i}.wav").write_bytes(b"")
    (tmp_path / odd).write_bytes(b"")
    files = list_split(tmp_path, "train") + list_split(tmp_path, "valid")
    assert sorted(files) == sorted(tmp_path.iterdir()) and len(files) == 5


@pytest.mark.parametrize("fmt, order", [
    ("WAV", ("FL", "FR", "FC", "LFE", "BL", "BR")),
    ("OGG", ("FL", "FC", "FR", "BL", "BR", "LFE")),  # Vorbis channel order
])
def test_excerpts_of_51_files_downmix_in_the_formats_channel_order(tmp_path, fmt, order):
    """A tone in the centre channel of a 5.1 file comes out 3 dB down whichever the format's
    channel order (read as WAV order, the Ogg's centre would be taken for FR: -6 dB)."""
    x = np.zeros((16000, 6), np.float32)
    x[:, order.index("FC")] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    path = tmp_path / f"six.{fmt.lower()}"
    sf.write(str(path), x, 16000, format=fmt)
    y = read_excerpt(path, 0.0, 8000, 16000, None)
    src = sf.read(str(path), dtype="float32", start=0, frames=8000)[0][:, order.index("FC")]
    assert 20 * np.log10(np.std(y) / np.std(src)) == pytest.approx(-3.01, abs=0.05)


def test_stage1_folder_follows_links_only_inside_and_warns_once(tmp_path):
    # issue 23 row 10: one symlink rule; a `..` link must not pull in sibling folders
    import os
    root, sibling = tmp_path / "songs", tmp_path / "other"
    (root / "sub").mkdir(parents=True)
    sibling.mkdir()
    for p in (root / "a.wav", root / "sub" / "b.wav", sibling / "x.wav"):
        sf.write(str(p), np.zeros(1600, np.float32), 16000)
    os.symlink("..", root / "up")
    os.symlink("..", root / "sub" / "loop")
    os.symlink("sub", root / "inner")
    with pytest.warns(UserWarning, match=r"2 symbolic link\(s\) not followed") as record:
        files = list_split(root, "all")
    assert files == [root / "a.wav", root / "sub" / "b.wav"]
    assert len([w for w in record if "not followed" in str(w.message)]) == 1
