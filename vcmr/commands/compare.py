"""``vcmr compare``: the differences between models that `vcmr evaluate` scored, in one run or
in several, with a paired bootstrap interval over songs for every pair.

    vcmr compare results/magnatagatune/audio results/magnatagatune/video --out results/cmp
"""
from pathlib import Path

from vcmr.paths import check_output_dir

# Lazy import: vcmr.evaluate.compare in run, so that --help answers at once.


def add_arguments(parser):
    parser.add_argument("results", nargs="+",
                        help="results folders written by `vcmr evaluate` (<results_dir>/<dataset>/<name>, "
                             "each with song_scores.npz); the baseline first: differences are later − earlier")
    parser.add_argument("--out", default=None,
                        help="folder for comparison.md, comparison.png and differences.csv "
                             "(default: the first results folder's parent)")
    parser.add_argument("--overlap", default=None,
                        help="overlap ratio whose song scores are compared (default: the first evaluated)")
    parser.add_argument("--bootstrap_resamples", "--bootstrap-resamples", type=int, default=1000,
                        help="paired bootstrap resamples of the songs (default 1000)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the resamples (default 42)")


def run(args) -> int:
    out = args.out or str(Path(args.results[0]).parent)
    check_output_dir(out, f"--out {out!r}")
    from vcmr.evaluate.compare import compare_results, pair_sentence
    rows, files = compare_results(args.results, out, args.overlap, args.bootstrap_resamples, args.seed)
    for pair in dict.fromkeys((r["model"], r["baseline"]) for r in rows):
        print(pair_sentence([r for r in rows if (r["model"], r["baseline"]) == pair]))
    print(f"comparison: {files['comparison_md']}\ndifferences: {files['differences_csv']}")
    return 0
