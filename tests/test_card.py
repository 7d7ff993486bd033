"""The model card of `vcmr export --hub_dir` (``vcmr.io.card``): front matter that parses,
the stored configuration, the training data the checkpoint recorded, the HEAR validator's
result with --hear_check, the tagging numbers of a --results folder, a usage snippet that runs;
nothing unknown is printed."""
import json
import re

import numpy as np
import pytest
import yaml

import vcmr
from vcmr.audio.io import write_wav
from vcmr.cli import main
from vcmr.evaluate.tagging import write_results
from vcmr.io.checkpoint import checkpoint_data
from vcmr.metrics.tagging import tagging_metrics

from embed_helpers import SR, TAGS, music, stage1_checkpoint, stage3_checkpoint


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("card")


def export(ckpt, out, *extra) -> str:
    assert main(["export", str(ckpt), "--hub_dir", str(out), *extra]) == 0
    return (out / "README.md").read_text()


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def results_folder(path, ckpt, roc_interval=(0.61, 0.83)):
    """What `vcmr evaluate` writes (its own writer, metrics of random scores) plus an interval
    entry and a comparison.md, as a compare with intervals would add."""
    rng = np.random.default_rng(0)
    labels = (rng.random((20, len(TAGS))) > 0.5).astype(int)
    metrics = tagging_metrics(labels, rng.random((20, len(TAGS))), TAGS, {})
    metrics["roc_auc_interval"] = list(roc_interval)
    for name, ck in (("mine", ckpt), ("other", "elsewhere.ckpt")):
        write_results(path / "magnatagatune" / name, {
            "dataset": "magnatagatune", "subset": "test", "n_songs": 20, "aggregation": "average",
            "overlaps": {"0.0": metrics}, "model_name": name, "checkpoint": str(ck)})
    (path / "magnatagatune" / "comparison.md").write_text("| model | ROC-AUC |\n|---|---|\n| mine | x |\n")
    return metrics


def test_card_of_a_trained_checkpoint_carries_config_and_training_summary(root):
    ckpt = stage1_checkpoint(root)
    data = checkpoint_data(ckpt)
    assert data["examples"] == "audio files" and data["train_examples"] + data["valid_examples"] == 6
    assert data["dataset_dir"] == "stage1_audio"  # the folder's name, never its full path
    card = export(ckpt, root / "music-card")
    front = front_matter(card)
    assert front["library_name"] == "vcmr" and front["pipeline_tag"] == "feature-extraction"
    assert "contrastive-learning" in front["tags"] and front["license"] == "mit"
    for row in ("| n_blocks | 6 |", "| learning_rate | 0.0003 |", "| n_channels | [16, 16, 32, 32, 32, 64] |",
                "| dataset_dir | `stage1_audio` |", "| temperature | 0.1 |"):
        assert row in card, row
    assert f"- training: {data['train_examples']} audio files" in card
    assert f"- validation: {data['valid_examples']} audio files" in card
    assert "global step 1" in card and "| accelerator |" not in card and str(root) not in card
    for unknown in ("More Information Needed", "not recorded", "?`", "n/a"):
        assert unknown not in card
    assert "## Tagging results" not in card and "## HEAR" not in card
    saved = json.loads((root / "music-card" / "config.json").read_text())
    assert saved["training_data"] == data and saved["versions"]["vcmr"] == vcmr.__version__


def test_results_folder_puts_its_roc_auc_and_intervals_in_the_card(root):
    ckpt = stage3_checkpoint(root)
    metrics = results_folder(root / "results", ckpt)
    card = export(ckpt, root / "tagger-card", "--results", str(root / "results"), "--repo_id", "me/tagger")
    section = card.split("## Tagging results")[1].split("\n## ")[0]
    assert f"{metrics['roc_auc']:.4g}" in section and f"{metrics['pr_auc']:.4g}" in section
    assert "[0.61, 0.83]" in section and "roc_auc_interval" in section
    assert re.search(r"\| magnatagatune/mine \(this model\) \| magnatagatune / test \| 20 \| 0.0 \|", section)
    assert "| magnatagatune/other |" in section and "| mine | x |" in section  # comparison.md
    assert 'vcmr.load_model("hf://me/tagger")' in card


def test_usage_snippet_runs(root, tmp_path):
    """The card's Python block, with the Hub name pointed at the exported folder."""
    out = root / "snippet-card"
    card = export(stage3_checkpoint(root), out, "--repo_id", "me/tiny-tagger")
    code = card.split("```python\n")[1].split("```")[0]
    write_wav(tmp_path / "song.wav", music(1.0, SR, seed=3), SR)
    code = code.replace("hf://me/tiny-tagger", str(out)).replace("song.wav", str(tmp_path / "song.wav"))
    scope = {}
    exec(code, scope)
    assert scope["song"].shape == (scope["model"].embedding_size,)
    assert scope["emb"].embeddings.shape[1] == scope["model"].embedding_size


def test_hear_check_result_reaches_the_card(root):
    card = export(stage3_checkpoint(root), root / "hear-card", "--hear_check")
    section = card.split("## HEAR")[1].split("\n## ")[0]
    assert "hearvalidator 2021.0.6" in section and "passes, without warnings" in section
    assert "Declared sample rate 16000 Hz" in section
    report = json.loads((root / "hear-card" / "config.json").read_text())["hear"]
    assert report["passed"] is True and report["warnings"] == []


def test_bad_results_and_card_flags_without_hub_dir_are_refused(root, tmp_path, capsys):
    ckpt = stage3_checkpoint(root)

    def refused(args, message):
        assert main(["export", str(ckpt), *args]) == 1
        assert re.search(message, capsys.readouterr().err), message
    (tmp_path / "empty").mkdir()
    bad = tmp_path / "bad" / "m" / "global_metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    for k in range(51):
        many = tmp_path / "many" / str(k) / "global_metrics.json"
        many.parent.mkdir(parents=True)
        many.write_text("{}")
    for i, (folder, message) in enumerate([("none", "--results .* is not a folder"),
                                           ("many", "holds 51 global_metrics.json files \\(at most 50\\)"),
                                           ("empty", "holds no global_metrics.json: run `vcmr evaluate"),
                                           ("bad", "not a readable global_metrics.json")]):
        refused(["--hub_dir", str(tmp_path / f"out{i}"), "--results", str(tmp_path / folder)], message)
        assert not (tmp_path / f"out{i}" / "README.md").exists()  # refused before any file is written
    refused(["--out", str(tmp_path / "m.safetensors"), "--hear_check", "--results", "x"],
            "--hear_check, --results describe the model card: give --hub_dir")
    refused(["--hub_dir", str(tmp_path / "d"), "--repo_id", "no-slash"], "not a Hub model name")
