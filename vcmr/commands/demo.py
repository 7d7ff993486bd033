"""``vcmr demo``: every stage of VCMR end to end on synthetic data, with a report.

The console shows the demo's own lines: one start and one done line per stage with its key
numbers. Lightning's model summaries, device lines, tips and library warnings are hidden;
``--verbose`` brings them back (it sets ``VCMR_VERBOSE=1``, which every training stage reads).

The demo and the training stack (Lightning, PyAV, matplotlib: the ``train`` and ``video``
extras) are imported when the demo runs, so ``vcmr demo --help`` answers at once.
"""
import warnings

from vcmr.paths import check_output_dir


def add_arguments(parser):
    parser.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "medium"],
                        help="tiny: ~3 min smoke run; small (default): the demo; medium: paper geometry")
    parser.add_argument("--frame_encoder", "--frame-encoder", default="efficientnet-lite0", choices=["efficientnet-lite0", "clip"],
                        help="frame encoder for `prepare` (efficientnet-lite0 works offline; clip is "
                             "downloaded once into the Hugging Face cache when online)")
    parser.add_argument("--seed", type=int, default=0, help="first seed (data and pre-training)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="how many seeds of the pre-training stages and probes (default 1; "
                             "the report gives mean ± spread over them)")
    parser.add_argument("--verbose", action="store_true",
                        help="also show Lightning's model summaries, device lines and library warnings")


def run(args) -> int:
    from vcmr.train.trainer import set_verbose
    set_verbose(args.verbose)
    if not args.verbose:
        warnings.filterwarnings("ignore", category=UserWarning)
    from vcmr.demo.run import run_demo
    check_output_dir(args.out, f"--out {args.out!r}")
    run_demo(args.out, args.scale, args.frame_encoder, args.seed, args.seeds)
    return 0
