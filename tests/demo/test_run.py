"""The demo: end to end at --scale tiny (slow: about 3 minutes on 2 cores), its configs at every
scale, its console lines and where its recipe departs from the defaults."""
import json
from pathlib import Path

import pytest

from vcmr.cli import main
from vcmr.config import load_config
from vcmr.demo.run import ENCODERS, SCALES, StageTimer, _say_prepare, build_configs, recipe_overrides
from vcmr.models import SampleCNN


@pytest.mark.slow
def test_demo_tiny_produces_every_stage_and_the_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--scale", "tiny", "--seed", "0"]) == 0
    facts = json.loads((out / "facts.json").read_text())
    # 1-2: synthetic data and preparation, with the planted faults handled
    assert (out / "data" / "videos" / "metadata.jsonl").is_file()
    assert (out / "data" / "magnatagatune" / "annotations_final.csv").is_file()
    reasons = facts["prepare"]["reasons"]
    assert reasons.get("dropped:long_scene") == 1 and reasons.get("dropped:too_short") == 1
    assert reasons.get("failed:decode_error") == 1 and facts["prepare"]["counts"]["kept"] >= 8
    # 3-5: a checkpoint for every training run
    runs = facts["runs"]
    for path in [runs["stage1"]["best"], runs["stage2"]["best"]] + [r["best"] for r in runs["stage3"].values()]:
        assert Path(path).is_file()
    # 6: evaluation of the three encoders and retrieval
    assert set(facts["tagging"]) == {"random", "audio_only", "video_conditioned"}
    for res in facts["tagging"].values():
        assert 0.0 <= res["overlaps"]["0.0"]["roc_auc"] <= 1.0
    assert facts["retrieval"]["segments"]["chance_R@1"] > 0
    # the report holds all of it
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for label in ("random init", "audio-only (stage 1)", "video-conditioned (stage 2)"):
        assert md.count(label) >= 2 and label in html
    assert "synthetic" in md and "Reference results on real data" in md and "| chance |" in md
    assert "one SampleCNN instance" in md  # the caveat on the authors' evaluation
    assert "demo overrides" in md and "learning_rate" in md  # where the demo departs from the recipe
    assert "data:image/png;base64," in html and "<img" in html
    for png in ("figures/stage1_curves.png", "figures/stage2_curves.png"):
        assert (out / png).stat().st_size > 1000
    assert sorted(p.name for p in (out / "configs").glob("*.yaml")) == [
        "evaluate.yaml", "music.yaml", "prepare.yaml", "tagging_audio_only.yaml", "tagging_random.yaml",
        "tagging_video_conditioned.yaml", "video.yaml"]


@pytest.mark.parametrize("scale", ["tiny", "small", "medium"])
def test_every_scale_resolves_to_valid_configs(tmp_path, scale):
    """Each scale's stage configs load, and its SampleCNN fits its input and segments."""
    cfgs = build_configs(tmp_path, SCALES[scale], seed=0, frame_encoder="efficientnet-lite0")
    model = SampleCNN(cfgs["music"])
    seg = SCALES[scale].prepare["segment_seconds"]
    assert model.audio_length <= seg * cfgs["music"].sample_rate
    assert set(cfgs["tagging"]) == set(ENCODERS)
    assert cfgs["prepare"].n_segments * cfgs["prepare"].segment_seconds == cfgs["prepare"].window_seconds


def test_stage_lines_carry_the_key_numbers():
    lines = []
    timer = StageTimer(2, lines.append)
    timer.run("prepare", lambda: {"counts": {"kept": 5, "dropped": 1}, "reasons": {"dropped:too_short": 1}},
              _say_prepare)
    assert lines[0] == "[1/2] prepare ..."
    assert lines[1].startswith("[1/2] done in ") and lines[1].endswith(": kept 5; dropped 1 (too short 1)")


def test_recipe_overrides_list_exactly_where_the_demo_departs_from_the_defaults(tmp_path):
    """The report's override table: recipe keys that differ from the stage defaults, no paths."""
    cfgs = build_configs(tmp_path, SCALES["small"], seed=0, frame_encoder="efficientnet-lite0")
    over = recipe_overrides(cfgs)
    assert set(over) == {"music", "video", "tagging"}
    assert over["music"]["learning_rate"] == 1e-3 != load_config("music").learning_rate
    assert over["tagging"]["batch_size"] == 16
    for stage, keys in over.items():
        assert not {"dataset_dir", "log_dir", "experiment_name"} & set(keys)
        assert keys and all(value != getattr(load_config(stage), key) for key, value in keys.items())
        assert "optimizer" not in keys and "weight_decay" not in keys  # the authors' optimiser is kept
