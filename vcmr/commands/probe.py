"""``vcmr probe``: fast linear/MLP probe on frozen embeddings cached on disk."""
from vcmr.config import load_config
from vcmr.paths import check_output_dir

# Lazy import: vcmr.evaluate.probe (torch, scikit-learn) in run, so that --help answers at once.


def add_arguments(parser):
    parser.add_argument("--config", default=None,
                        help="YAML config (stage-3 keys; default: the built-in defaults = config/tagging.yaml)")
    parser.epilog = "Probe keys: --probe_head linear|mlp, --probe_epochs N, --results_dir, --model_name."


def run(args) -> int:
    cfg = load_config("tagging", args.config, args.overrides)
    check_output_dir(cfg.results_dir, f"results_dir {cfg.results_dir!r}")
    if cfg.cache_dir:  # the probe writes its embedding cache there
        check_output_dir(cfg.cache_dir, f"cache_dir {cfg.cache_dir!r}")
    from vcmr.evaluate.probe import probe
    out = probe(cfg, progress=cfg.progress_bar)
    t, v = out["test"], out["valid"]
    fmt = lambda x: "n/a" if x is None else f"{x:.4f}"
    print(f"{out['model_name']} probe ({cfg.probe_head}) on {cfg.dataset} test: ROC-AUC {fmt(t['roc_auc'])} "
          f"PR-AUC {fmt(t['pr_auc'])} ({t['n_songs']} songs; valid PR-AUC {fmt(v['pr_auc'])})\n"
          f"time: embeddings {out['timing']['extract_s']:.1f} s, head {out['timing']['fit_s']:.1f} s "
          f"({out['epochs']} epochs)\nresults: {out['files']['global_metrics']}")
    if t["tags_without_positives"]:
        print(f"tags without positives in test (not averaged): {', '.join(t['tags_without_positives'])}")
    return 0
