"""The demo: end to end at --scale tiny (slow), its configs at every scale, its console lines and
where its recipe departs from the defaults."""
import json
from pathlib import Path

import pytest

from vcmr.cli import main
from vcmr.config import load_config
from vcmr.demo.run import StageTimer, _say_prepare
from vcmr.demo.scales import ENCODERS, SCALES, build_configs, recipe_overrides
from vcmr.models import SampleCNN


@pytest.mark.slow
def test_demo_tiny_produces_every_stage_and_the_report(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--scale", "tiny", "--seed", "0"]) == 0
    facts = json.loads((out / "facts.json").read_text())
    # 1-2: synthetic data and preparation, with the planted faults handled
    assert (out / "data" / "videos" / "metadata.jsonl").is_file()
    assert (out / "data" / "av_features" / "metadata.jsonl").is_file()
    assert (out / "data" / "magnatagatune" / "annotations_final.csv").is_file()
    assert (out / "data" / "mtg_jamendo" / "data" / "tags" / "moodtheme_groups.yaml").is_file()
    reasons = facts["prepare"]["reasons"]
    assert reasons.get("dropped:long_scene") == 1 and reasons.get("dropped:too_short") == 1
    assert reasons.get("failed:decode_error") == 1 and facts["prepare"]["counts"]["kept"] >= 8
    # 3-4: stage 1, the real stage 2 and the control, from the same stage-1 checkpoint
    seed = facts["per_seed"]["0"]
    runs = seed["runs"]
    for name in ("stage1", "video_conditioned", "mismatched_control"):
        assert Path(runs[name]["last"]).is_file()
    import yaml
    real = yaml.safe_load((out / "configs" / "seed0" / "video_video_conditioned.yaml").read_text())
    ctrl = yaml.safe_load((out / "configs" / "seed0" / "video_mismatched_control.yaml").read_text())
    assert real["audio_encoder_ckpt_path"] == ctrl["audio_encoder_ckpt_path"] == runs["stage1"]["last"]
    assert (real["derange_pairs"], ctrl["derange_pairs"]) == (False, True)
    # 5: probes of the four encoders on both datasets, retrieval of both stage-2 models
    for ds in ("magnatagatune", "mtg-jamendo"):
        assert set(seed["probes"][ds]) == set(ENCODERS)
        for res in seed["probes"][ds].values():
            assert 0.0 <= res["test"]["roc_auc"] <= 1.0
            assert Path(res["files"]["song_scores"]).is_file()
    assert set(seed["retrieval"]) == {"video_conditioned", "mismatched_control"}
    # 6: differences with intervals, and the report holds all of it
    assert {r["dataset"] for r in facts["summary"]["differences"]} == {"magnatagatune", "mtg-jamendo"}
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for label in ("random init", "audio-only (stage 1)", "video-conditioned (stage 2)", "mismatched control"):
        assert md.count(label) >= 2 and label in html
    assert "synthetic" in md and "Reference results on real data" in md and "paired bootstrap" in md
    assert "Which moments matched" in md and Path(seed["example"]["csv"]).is_file()  # --explain
    assert "one SampleCNN instance" in md  # the caveat on the authors' evaluation
    assert "demo overrides" in md and "learning_rate" in md  # where the demo departs from the recipe
    assert "data:image/png;base64," in html and "<img" in html
    for png in ("figures/stage1_curves.png", "figures/stage2_curves.png", "figures/tagging_comparison.png"):
        assert (out / png).stat().st_size > 1000


@pytest.mark.parametrize("scale", ["tiny", "small", "medium"])
def test_every_scale_resolves_to_valid_configs(tmp_path, scale):
    """Each scale's stage configs load, and its SampleCNN fits its input and segments."""
    cfgs = build_configs(tmp_path, SCALES[scale], seed=0, frame_encoder="efficientnet-lite0")
    model = SampleCNN(cfgs["music"])
    assert model.audio_length <= SCALES[scale].world["segment_seconds"] * cfgs["music"].sample_rate
    assert SCALES[scale].world["sample_rate"] == cfgs["music"].sample_rate
    assert set(cfgs["video"]) == {"video_conditioned", "mismatched_control"}
    assert cfgs["video"]["mismatched_control"].derange_pairs and not cfgs["video"]["video_conditioned"].derange_pairs
    for ds in ("magnatagatune", "mtg-jamendo"):
        assert set(cfgs["probe"][ds]) == set(ENCODERS)
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
