"""``vcmr cache-audio``: decode and resample a tagging dataset once, in parallel."""
from vcmr.config import load_config
from vcmr.errors import VcmrError
from vcmr.locks import locked
from vcmr.paths import check_output_dir

# Lazy imports: vcmr.data.cache and vcmr.data.tagging (torch) in run, so that --help answers at once.


def add_arguments(parser):
    parser.add_argument("--config", default=None, help="YAML config (stage-3 keys; default config/tagging.yaml)")
    parser.add_argument("--dataset", choices=["magnatagatune", "mtg-jamendo"], help="dataset format")
    parser.add_argument("--dataset_dir", "--dataset-dir", help="dataset folder (audio + split files)")
    parser.add_argument("--cache_dir", "--cache-dir", help="where the decoded audio goes (then pass --cache_dir to train tagging / evaluate/probe)")
    parser.add_argument("--subsets", default="train,valid,test", help="comma-separated subsets to cache")


def run(args) -> int:
    overrides = list(args.overrides)
    for key in ("dataset", "dataset_dir", "cache_dir"):
        if getattr(args, key, None):
            overrides += [f"--{key}", getattr(args, key)]
    cfg = load_config("tagging", args.config, overrides)
    if not cfg.cache_dir:
        raise VcmrError("give --cache_dir: the folder where the decoded audio is written")
    check_output_dir(cfg.cache_dir, f"--cache_dir {cfg.cache_dir!r}")
    from vcmr.data.cache import cache_audio
    from vcmr.data.tagging import load_split_from_config
    with locked(cfg.cache_dir, f"--cache_dir {cfg.cache_dir!r}"):
        items = []
        for subset in [s.strip() for s in args.subsets.split(",") if s.strip()]:
            items += load_split_from_config(cfg, subset).items
        out = cache_audio(items, cfg.cache_dir, cfg.sample_rate, workers=max(1, cfg.workers),
                          progress=cfg.progress_bar)
    print(f"{out['decoded']} decoded, {out['cached']} already cached, {out['failed']} failed -> {out['cache_dir']}")
    for err in out["errors"][:20]:
        print(f"  failed: {err}")
    return 0
