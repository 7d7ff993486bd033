"""Model files record the library versions they were exported with; ``vcmr.load_model`` warns
once when the running ones differ in a way known to matter (``vcmr.io.versions.MATTERS``)."""
import json
import warnings

import pytest
from safetensors.torch import save_file

import vcmr
from vcmr.io import versions as V
from vcmr.io.model_file import ModelFileError, read_model_file, save_model_file

from embed_helpers import tiny_model


@pytest.fixture
def exported(tmp_path, monkeypatch):
    monkeypatch.setattr(V, "_WARNED", set())  # "once per process" starts afresh in each test
    return save_model_file(tiny_model("music"), tmp_path / "m.safetensors")


def rewrite(path, out, **changes):
    """A copy of model file ``path`` with metadata ``changes`` (None deletes the key)."""
    state, meta = read_model_file(path)
    meta = {k: v for k, v in {**meta, **changes}.items() if v is not None}
    save_file(state, str(out), metadata=meta)
    return out


def other_minor(version: str) -> str:
    major, minor = V.release(version, 2)
    return f"{major}.{minor + 1}.0"


def test_export_records_the_running_versions(exported):
    recorded = json.loads(read_model_file(exported)[1]["versions"])
    assert recorded == V.running_versions()
    assert set(recorded) == set(V.PACKAGES) and recorded["vcmr"] == vcmr.__version__


def test_same_versions_load_without_a_warning(exported):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vcmr.load_model(exported, "cpu")


def test_another_torch_minor_warns_once_naming_both_versions(exported, tmp_path):
    running = V.running_versions()["torch"]
    recorded = {**V.running_versions(), "torch": other_minor(running)}
    f = rewrite(exported, tmp_path / "old.safetensors", versions=json.dumps(recorded))
    with pytest.warns(V.VersionWarning) as caught:
        vcmr.load_model(f, "cpu")
        vcmr.load_model(f, "cpu")  # the same pair again: no second warning
    assert len(caught) == 1
    text = str(caught[0].message)
    assert f"torch {other_minor(running)}" in text and f"runs torch {running}" in text and "old.safetensors" in text


def test_a_patch_release_or_python_difference_does_not_warn(exported, tmp_path):
    running = V.running_versions()
    major, minor = V.release(running["torch"], 2)
    recorded = {**running, "torch": f"{major}.{minor}.99", "python": "3.0.0"}
    f = rewrite(exported, tmp_path / "patch.safetensors", versions=json.dumps(recorded))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vcmr.load_model(f, "cpu")


def test_which_parts_are_compared():
    running = {"torch": "2.5.1+cpu", "numpy": "2.1.0", "soxr": "0.5.0", "soundfile": "0.12.1", "vcmr": "0.1.0"}
    assert V.version_differences(running, running) == []
    assert V.version_differences({**running, "numpy": "2.3.0"}, running) == []  # numpy: major only
    assert V.version_differences({"numpy": "1.26.4"}, running) == [("numpy", "1.26.4", "2.1.0")]
    assert V.version_differences({"soxr": "0.3.7"}, running) == [("soxr", "0.3.7", "0.5.0")]
    assert V.version_differences({"torch": "2.4.0"}, running) == [("torch", "2.4.0", "2.5.1+cpu")]
    assert V.version_differences({"torch": "garbage", "vcmr": "0.1.3"}, running) == []
    assert V.version_differences({"soxr": "0.3.7"}, {}) == []  # not installed here: not compared


def test_a_file_without_versions_loads_without_a_warning(exported, tmp_path):
    """Format-2 files written before versions were recorded."""
    f = rewrite(exported, tmp_path / "older.safetensors", versions=None)
    assert "versions" not in read_model_file(f)[1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert vcmr.load_model(f, "cpu").stage == "music"


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '{"torch": 2}'])
def test_a_damaged_versions_field_is_a_clear_error(exported, tmp_path, bad):
    f = rewrite(exported, tmp_path / "bad.safetensors", versions=bad)
    with pytest.raises(ModelFileError, match="damaged vcmr metadata"):
        vcmr.load_model(f, "cpu")
