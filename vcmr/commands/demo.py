"""``vcmr demo``: every stage of VCMR end to end on synthetic data, with a report."""


def add_arguments(parser):
    parser.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    parser.add_argument("--scale", default="small", choices=["tiny", "small", "medium"],
                        help="tiny: ~3 min smoke run; small (default): the demo; medium: paper geometry")
    parser.add_argument("--frame-encoder", default="efficientnet-lite0", choices=["efficientnet-lite0", "clip"],
                        help="frame encoder for `prepare` (efficientnet-lite0 works offline; clip needs "
                             "the CLIP weights in the Hugging Face cache)")
    parser.add_argument("--seed", type=int, default=0)


def run(args) -> int:
    import logging
    import warnings
    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    from vcmr.demo import run_demo
    from vcmr.paths import check_output_dir
    check_output_dir(args.out, f"--out {args.out!r}")
    run_demo(args.out, args.scale, args.frame_encoder, args.seed)
    return 0
