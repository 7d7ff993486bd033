"""``vcmr embed``: embeddings of audio files, folders, or the audio track of videos.

    vcmr embed my_music/ --ckpt model.safetensors --out emb.parquet
    vcmr embed a.wav clip.mp4 --ckpt last.ckpt --out emb.npz --song_level --overlap 0.5
"""
import sys

from tqdm import tqdm

from vcmr.embed_io import collect_inputs, embed_paths, format_of, write_table
from vcmr.embed_journal import EmbedJournal, model_identity
from vcmr.errors import VcmrError
from vcmr.locks import locked_output_file
from vcmr.paths import check_output_file

# Lazy imports: vcmr.devices and vcmr.io.load (torch, 2-3 s to import) are imported in run, so
# that `vcmr embed --help` answers at once.


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="audio/video files or folders (searched recursively)")
    parser.add_argument("--ckpt", required=True,
                        help="model: a .ckpt of any stage, a .safetensors from `vcmr export` (or its --hub_dir folder), "
                             "a Hugging Face Hub model hf://ORG/NAME[@REVISION], or the authors' or CLMR's checkpoint")
    parser.add_argument("--out", required=True, help="output file (.npy, .npz, .parquet or .csv)")
    parser.add_argument("--format", choices=["npy", "npz", "parquet", "csv"], default=None,
                        help="output format (default: from the --out suffix)")
    parser.add_argument("--song_level", "--song-level", action="store_true",
                        help="one row per file: the mean of its segment embeddings")
    parser.add_argument("--overlap", type=float, default=0.0,
                        help="overlap between consecutive segments as a fraction in [0, 1) (default 0)")
    parser.add_argument("--space", choices=["encoder", "joint"], default="encoder",
                        help="encoder output (default) or, for stage-2 models, the audio-video joint space")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=0, help="segments per forward pass (default: 32, measured in benchmarks/README.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from vcmr.devices import resolve_device
    from vcmr.io.load import load_model
    fmt = format_of(args.out, args.format)
    if not 0.0 <= args.overlap < 1.0:
        raise VcmrError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.batch_size < 0:
        raise VcmrError(f"--batch_size must be a positive count (or 0 for automatic), got {args.batch_size}")
    # Before the (long) embedding: the output must be writable and must not be an input.
    check_output_file(args.out, f"--out {args.out!r}", [args.ckpt, *args.inputs])
    with locked_output_file(args.out, f"--out {args.out!r}"):
        device = resolve_device(args.device, "--device")  # before any file is read
        model = load_model(args.ckpt, device)
        model.batch_size = args.batch_size or None
        model.space_size(args.space)  # fail early when the model has no such space
        files, input_errors = collect_inputs(args.inputs)
        for path, msg in input_errors:
            print(f"vcmr embed: skipped {path}: {msg}", file=sys.stderr)

        def report(path, msg):  # tqdm.write keeps the progress bar intact
            tqdm.write(f"vcmr embed: skipped {path}: {msg}", file=sys.stderr)

        journal = EmbedJournal(args.out, {**model_identity(args.ckpt), "overlap": args.overlap,
                                          "song_level": args.song_level, "space": args.space})
        note = journal.resume()
        if note:
            print(f"vcmr embed: {note}", file=sys.stderr)
        try:
            table, errors = embed_paths(files, model, args.overlap, args.song_level, args.space,
                                        progress=not args.quiet, on_error=report, journal=journal)
        finally:
            journal.close()
        n_ok = len(set(table.paths))
        if n_ok == 0:
            journal.remove()
            raise VcmrError(f"no file could be embedded ({len(errors) + len(input_errors)} skipped); "
                            f"nothing written to {args.out}")
        write_table(table, args.out, fmt)
        journal.remove()  # only once --out holds every row
        skipped = len(errors) + len(input_errors)
        print(f"embedded {n_ok} file(s) -> {len(table.paths)} row(s) of {table.embeddings().shape[1]}-D "
              f"({args.space} space) in {args.out}" + (f"; {skipped} skipped (see above)" if skipped else "")
              + (f"; {journal.reused} of them taken from the interrupted run" if journal.reused else ""))
    return 0
