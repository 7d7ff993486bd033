"""The demo report as a reader sees it: plots labelled train/validation with the metric name,
legends outside the data, the prepare table as outcome -> reason, and report.html rendered in
headless Chromium (every image loads, nothing wider than the page).

The facts are built here (the demo's structure, seeded numbers) and the training curves are
real TensorBoard event files, so the report code runs as in `vcmr demo` without training.
"""
import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tensorboard")

from vcmr.demo.report import curves_figure, prepare_rows, write_report  # noqa: E402
from vcmr.demo.scales import DATASETS, ENCODERS, SCALES  # noqa: E402
from vcmr.demo.stats import seed_summary  # noqa: E402
from vcmr.evaluate.differences import save_song_scores  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
TAGS = {"magnatagatune": ["guitar", "piano", "slow", "fast"],
        "mtg-jamendo": ["mood/theme---happy", "mood/theme---sad", "mood/theme---fast"]}
GROUPS = {"magnatagatune": {"instrument": ["guitar", "piano"], "mood": ["slow", "fast"]},
          "mtg-jamendo": {"visual": ["mood/theme---happy", "mood/theme---sad"], "audible": ["mood/theme---fast"]}}
# how well each encoder's scores follow the labels (the video-conditioned one best)
SKILL = {"random": 0.2, "audio_only": 0.8, "video_conditioned": 2.0, "mismatched_control": 0.6}


def _scalars(log_dir: Path, tags: list[str], steps: int, seed: int) -> str:
    from torch.utils.tensorboard import SummaryWriter
    rng = np.random.default_rng(seed)
    w = SummaryWriter(str(log_dir))
    for step in range(steps):
        for tag in tags:
            if tag.startswith("Train/") or step % 4 == 3:  # validation once per "epoch"
                w.add_scalar(tag, float(np.exp(-step / steps) + 0.05 * rng.random()), step)
    w.close()
    return str(log_dir)


def _probe(root: Path, ds: str, enc: str, seed: int, labels: np.ndarray) -> dict:
    rng = np.random.default_rng([seed, ENCODERS.index(enc)])
    scores = 1 / (1 + np.exp(-(SKILL[enc] * (labels - 0.5) + rng.normal(0, 1, labels.shape))))
    folder = root / f"seed{seed}" / ds / enc
    folder.mkdir(parents=True)
    save_song_scores(folder / "song_scores.npz", {"song_ids": [f"s{i}" for i in range(len(labels))],
                                                 "tags": TAGS[ds], "labels": labels, "scores": {"0.0": scores}})
    return {"categories": GROUPS[ds], "files": {"song_scores": str(folder / "song_scores.npz")}}


def _retrieval(rng) -> dict:
    ret = {"n": 40, "chance_R@1": 0.025, "chance_R@5": 0.125, "chance_R@10": 0.25, "chance_median_rank": 20.5}
    for d in ("a2v", "v2a"):
        ret.update({f"{d}_R@1": rng.random(), f"{d}_R@5": rng.random(), f"{d}_R@10": rng.random(),
                    f"{d}_median_rank": float(rng.integers(1, 20))})
    ranks = {d: rng.integers(1, 41, 40).tolist() for d in ("a2v", "v2a")}
    return {"held_out_videos": 40, "segments": ret, "videos": ret,
            "video_ids": [f"v{i}" for i in range(40)], "video_ranks": ranks}


def demo_facts(root: Path, seeds=(0, 1)) -> dict:
    rng = np.random.default_rng(0)
    labels = {ds: (rng.random((60, len(TAGS[ds]))) < 0.4).astype(float) for ds in DATASETS}
    per_seed = {}
    for s in seeds:
        tb = ["Train/loss", "Valid/loss", "Valid/a2v_R@1", "Valid/v2a_R@1", "Valid/chance_R@1"]
        per_seed[s] = {
            "runs": {"stage1": {"log_dir": _scalars(root / f"tb1_{s}", ["Train/loss", "Valid/loss"], 24, 1)},
                     "video_conditioned": {"log_dir": _scalars(root / f"tb2_{s}", tb, 24, 2)},
                     "mismatched_control": {"log_dir": _scalars(root / f"tb3_{s}", tb, 24, 3)}},
            "probes": {ds: {e: _probe(root, ds, e, s, labels[ds]) for e in ENCODERS} for ds in DATASETS},
            "retrieval": {n: _retrieval(rng) for n in ("video_conditioned", "mismatched_control")}}
    return {
        "scale": "tiny", "seed": seeds[0], "seeds": list(seeds), "frame_encoder": "efficientnet-lite0",
        "scale_settings": asdict(SCALES["tiny"]), "total_seconds": 185.0,
        "machine": {"platform": "Linux-x86_64", "cpus": 2, "gpu": False, "python": "3.11", "torch": "2.13"},
        "stage_seconds": {"generate": 20.0, "prepare": 30.0, "stage 1": 40.0},
        "corpus": {"videos": 14, "expected": {"kept": 11, "dropped:long_scene": 1, "dropped:too_short": 1,
                                              "failed:decode_error": 1},
                   "feature_videos": 24, "feature_modes": {"major": 12, "minor": 12},
                   "tagging_clips": 48, "tagging_splits": {"train": 30, "valid": 8, "test": 10},
                   "jamendo_tracks": 40, "jamendo_splits": {"train": 24, "validation": 8, "test": 8}},
        "prepare": {"counts": {"kept": 11, "dropped": 2, "failed": 1},
                    "reasons": {"dropped:long_scene": 1, "dropped:too_short": 1, "failed:decode_error": 1},
                    "feature_dim": 1280, "seconds": 30.0},
        "per_seed": per_seed, "summary": seed_summary(per_seed, n_boot=200),
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    facts = demo_facts(root)
    return root, facts, write_report(root / "out", facts)


def test_prepare_table_is_outcome_then_reason():
    rows = prepare_rows({"counts": {"failed": 1, "kept": 11, "dropped": 3},
                         "reasons": {"dropped:too_short": 1, "dropped:long_scene": 2, "failed:decode_error": 1}})
    assert rows == [["kept", "—", "11"], ["dropped", "long scene", "2"], ["dropped", "too short", "1"],
                    ["failed", "decode error", "1"]]


def test_markdown_report_names_the_curves_and_the_prepare_reasons(report):
    root, facts, paths = report
    md = Path(paths["md"]).read_text()
    assert "| outcome | reason | videos |" in md and "| dropped | long scene | 1 |" in md
    assert "dropped:long_scene" not in md
    assert "expected outcome → reason): kept: 11, dropped → long scene: 1" in md
    for png in ("stage1_curves.png", "stage2_curves.png", "tagging_comparison.png"):
        assert f"figures/{png}" in md and (root / "out" / "figures" / png).stat().st_size > 5000


def test_report_states_the_claim_with_intervals_and_the_control(report):
    """Four encoders per dataset with mean ± spread, every pair's difference with its interval,
    and the verdict on the visually grounded tags in words."""
    _, facts, paths = report
    md = Path(paths["md"]).read_text()
    for label in ("random init", "audio-only (stage 1)", "video-conditioned (stage 2)",
                  "mismatched control (stage 2, deranged pairs)"):
        assert md.count(label) >= 3
    assert "On the visually grounded tags (MTG-Jamendo-format happy / sad), the claim holds" in md
    row = next(r for r in facts["summary"]["differences"] if r["dataset"] == "mtg-jamendo"
               and r["category"] == "visual" and r["model"] == "video_conditioned"
               and r["baseline"] == "mismatched_control" and r["metric"] == "roc_auc")
    assert row["low"] > 0 and f"{row['difference']:+.3f} [{row['low']:+.3f}, {row['high']:+.3f}]" in md
    assert " ± " in md and "| visual ROC-AUC |" in md and "model better" in md
    # retrieval: recalls with intervals over the held-out videos, in the table and in words
    assert "| audio → video | R@1 |" in md and "real − control [95 %]" in md
    assert "Held-out video-level retrieval (40 videos, bootstrap 95 % intervals" in md


def test_curve_legends_say_train_and_validation_below_the_plot():
    """The legend is drawn outside the axes: its box lies below the data area."""
    series = {"Train/loss": [(i, 1.0 / (i + 1)) for i in range(10)], "Valid/loss": [(4, 0.3), (9, 0.2)]}
    fig = curves_figure(series, [("NT-Xent loss", [("Train/loss", "train"), ("Valid/loss", "validation")])], "Stage 1")
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["train", "validation"]
    assert ax.get_ylabel() == "NT-Xent loss" and ax.get_title() == "NT-Xent loss"
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CHECK_JS = """<script>
window.addEventListener('load', () => {
  const w = document.documentElement.clientWidth;
  const imgs = [...document.images].map(i => ({alt: i.alt, ok: i.complete && i.naturalWidth > 0,
                                             right: i.getBoundingClientRect().right}));
  const wide = [...document.body.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > w + 0.5)
                 .map(e => e.tagName + ':' + (e.textContent || '').slice(0, 40));
  const out = document.createElement('pre'); out.id = 'vcmr-check';
  out.textContent = JSON.stringify({width: w, scrollWidth: document.documentElement.scrollWidth,
                                    images: imgs, wide: wide});
  document.body.appendChild(out);
});
</script>"""


@pytest.mark.parametrize("width", [1280, 800])
def test_report_html_renders_in_chromium(report, width):
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium); .ci/run installs it")
    _, _, paths = report
    page = Path(paths["html"]).read_text().replace("</body>", CHECK_JS + "</body>")
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.html"
        probe.write_text(page)
        r = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp}/profile", f"--window-size={width},900",
                            "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                           capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert 'id="vcmr-check"' in dom, (r.returncode, r.stderr[-1500:])
    raw = dom.split('id="vcmr-check">', 1)[1].split("</pre>", 1)[0]
    check = json.loads(raw.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert len(check["images"]) == 3 and all(i["ok"] for i in check["images"]), check["images"]
    assert check["scrollWidth"] <= check["width"], check
    assert not check["wide"], check["wide"][:5]
