"""``vcmr retrieve``: music for a video, or videos for a piece of music, with a stage-2 model."""
import json
from pathlib import Path

import vcmr
from vcmr.errors import VcmrError
from vcmr.paths import check_input_dir, check_output_dir

# Lazy import: vcmr.evaluate.retrieval (torch, 2-3 s) in run, so that --help answers at once.


def add_arguments(parser):
    parser.add_argument("--ckpt", required=True, help="stage-2 checkpoint or exported model")
    parser.add_argument("--dataset_dir", "--dataset-dir", required=True, help="prepared dataset (vcmr prepare)")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--video", help="id of a prepared video: rank its music segments")
    query.add_argument("--audio", help="audio (or video) file: rank the prepared videos")
    parser.add_argument("--top", type=int, default=10, help="how many results (default 10)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--explain", metavar="OUT", default=None,
                        help="also write, for each result, the per-second audio-video similarity "
                             "timeline as OUT/<query>_<match>.png and .csv")


def check_inputs(args) -> None:
    """Every path and number before the model is loaded and the index built."""
    if args.top < 1:
        raise VcmrError(f"--top must be at least 1, got {args.top}")
    check_input_dir(args.dataset_dir, "--dataset_dir")
    if args.audio is not None:
        audio = Path(args.audio)
        if audio.is_dir():
            raise VcmrError(f"--audio {args.audio!r} is a folder; give one audio or video file "
                            f"(to embed a whole folder use `vcmr embed`)")
        if not audio.is_file():
            raise VcmrError(f"--audio {args.audio!r}: no such file")
    if args.explain is not None:
        check_output_dir(args.explain, f"--explain {args.explain!r}")


def run(args) -> int:
    from vcmr.evaluate.retrieval import build_index, rank
    check_inputs(args)
    model = vcmr.load_model(args.ckpt)
    if model.stage != "video":
        raise VcmrError(f"{args.ckpt} is a stage-{model.stage!r} model; retrieval needs a stage-2 "
                        f"(video-conditioned) checkpoint from `vcmr train video`")
    index = build_index(model, args.dataset_dir, progress=not args.json)
    if args.video:
        if args.video not in index["video_ids"]:
            raise VcmrError(f"video id {args.video!r} is not a kept video of {args.dataset_dir} "
                            f"(see its manifest.jsonl)")
        query = index["video_level"][index["video_ids"].index(args.video)]
        hits = [{"id": index["segments"][i][0], "segment": index["segments"][i][1], "score": s}
                for i, s in rank(query, index["audio"], args.top)]
        title = f"music segments for video {args.video}"
    else:
        query = vcmr.embed_file(args.audio, model, song_level=True, space="joint")
        hits = [{"id": index["video_ids"][i], "score": s} for i, s in rank(query, index["video_level"], args.top)]
        title = f"videos for {args.audio}"
    if args.explain is not None:
        from vcmr.evaluate.explain import explain_hits
        files = explain_hits(model, args.dataset_dir, hits, args.explain, args.video, args.audio)
        for hit, (png, csv) in zip(hits, files):
            hit["explanation"] = {"png": str(png), "csv": str(csv)}
    if args.json:
        print(json.dumps({"query": args.video or args.audio, "results": hits}, indent=1))
        return 0
    print(title)
    for r, hit in enumerate(hits, 1):
        seg = f"  segment {hit['segment']}" if "segment" in hit else ""
        print(f"{r:>3}. {hit['id']}{seg}  score {hit['score']:.3f}")
    if args.explain is not None:
        print(f"per-second similarity timelines (PNG + CSV) in {args.explain}")
    return 0
