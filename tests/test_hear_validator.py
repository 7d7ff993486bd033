"""``vcmr.hear_validator``: the HEAR validator's checks as `vcmr export --hear_check` runs them;
they pass for vcmr models at every rate and fail or warn on what the validator refuses."""
import pytest
import torch

from vcmr import hear
from vcmr.hear_validator import HearCheckError, hear_report, validate

from embed_helpers import tiny_model


@pytest.mark.parametrize("rate, declared", [(8000, 16000), (16000, 16000), (22050, 22050)])
def test_vcmr_models_pass_without_warnings(rate, declared):
    report = hear_report(tiny_model(sample_rate=rate))
    assert report["passed"] and report["warnings"] == []
    assert (report["sample_rate"], report["model_sample_rate"], report["embedding_size"]) == (declared, rate, 64)


def test_a_250_ms_hop_warns():
    report = hear_report(tiny_model(sample_rate=16000), timestamp_hop_ms=250)
    assert report["passed"] and any("> 50 ms" in w for w in report["warnings"])


def test_a_rate_hear_does_not_publish_fails():
    model = hear.HearModel(tiny_model(sample_rate=16000))
    model.sample_rate = 8000
    with pytest.raises(HearCheckError, match="8000 is not a HEAR rate"):
        validate(model)


def test_float64_scene_embeddings_fail_and_the_report_says_why(monkeypatch):
    original = hear.get_scene_embeddings
    monkeypatch.setattr(hear, "get_scene_embeddings", lambda audio, model: original(audio, model).to(torch.float64))
    report = hear_report(tiny_model(sample_rate=16000))
    assert report["passed"] is False and "torch.float64" in report["error"]
