"""``vcmr evaluate``: stage 4, song-level tagging metrics of one or several stage-3 checkpoints."""
from vcmr.config import load_config
from vcmr.paths import check_output_dir

# Lazy import: vcmr.evaluate.tagging (torch, scikit-learn) in run, so that --help answers at once.


def add_arguments(parser):
    parser.add_argument("--config", default=None, help="YAML config (default: built-in defaults = config/evaluate.yaml)")
    parser.add_argument("--dataset", choices=["magnatagatune", "mtg-jamendo"], help="dataset format")
    parser.add_argument("--dataset_dir", "--dataset-dir", help="dataset folder (audio + split files)")
    parser.add_argument("--ckpt", action="append", default=[],
                        help="stage-3 checkpoint (repeat to compare several models); added to the "
                             "config's ckpt_paths (the authors' ckpt_path_audio / ckpt_path_multimodal)")
    parser.add_argument("--name", action="append", default=[],
                        help="model name per --ckpt, in order (default: from the checkpoint path)")
    parser.add_argument("--subset", choices=["train", "valid", "test"], help="subset to evaluate (default test)")


def _fmt(x):
    return "n/a" if x is None else f"{x:.4f}"


def run(args) -> int:
    overrides = list(args.overrides)
    for key in ("dataset", "dataset_dir", "subset"):
        if getattr(args, key, None):
            overrides += [f"--{key}", getattr(args, key)]
    cfg = load_config("evaluate", args.config, overrides)
    check_output_dir(cfg.results_dir, f"results_dir {cfg.results_dir!r}")
    from vcmr.evaluate.tagging import evaluate_checkpoints
    ckpts = list(cfg.ckpt_paths) + list(args.ckpt)
    # a checkpoint without a name is named from its path
    names = [*cfg.ckpt_names, *[None] * (len(cfg.ckpt_paths) - len(cfg.ckpt_names)), *args.name]
    results = evaluate_checkpoints(cfg, ckpts, names if any(names) else None, progress=True)
    for name, r in results.items():
        for ov, m in r["overlaps"].items():
            print(f"{name} [overlap {ov}]: ROC-AUC {_fmt(m['roc_auc'])} PR-AUC {_fmt(m['pr_auc'])} "
                  f"({m['n_songs']} songs, {m['n_tags_averaged']} tags averaged)")
        if r["n_missing"] or r["n_unreadable"]:
            print(f"  {r['n_missing']} listed clips missing on disk, {r['n_unreadable']} unreadable: left out")
        first = next(iter(r["overlaps"].values()))
        if first["tags_without_positives"]:
            print(f"  tags without positives (not averaged): {', '.join(first['tags_without_positives'])}")
        print(f"  results: {r['files']['global_metrics']}")
    last = list(results.values())[-1]["files"]
    if "comparison_md" in last:
        print(f"comparison: {last['comparison_md']} (every pair's difference with its paired bootstrap "
              f"interval)\ndifferences: {last['differences_csv']}\nchart: {last['comparison_png']}")
    return 0
