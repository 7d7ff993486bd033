"""``vcmr export``: a checkpoint of any stage -> a portable .safetensors model file, or a folder
ready for the Hugging Face Hub, or (any model ``vcmr.load_model`` reads) an ONNX file.

    vcmr export runs/music/version_0/checkpoints/last.ckpt --out model.safetensors
    vcmr export runs/.../best.ckpt --hub_dir my-vcmr-model && hf upload ORG/my-vcmr-model my-vcmr-model
    vcmr export model.safetensors --format onnx --out model.onnx
    vcmr export best.ckpt --hub_dir my-model --repo_id ORG/my-model --hear_check --results results/

The model-file modules (torch, safetensors) are imported in ``run``, so that
``vcmr export --help`` answers without loading torch.
"""
from pathlib import Path

from vcmr.errors import VcmrError
from vcmr.locks import lock_output_file
from vcmr.paths import check_output_file


def add_arguments(parser):
    parser.add_argument("ckpt", help="a .ckpt written by vcmr training (stage 1, 2 or 3); with "
                                     "--format onnx any model vcmr.load_model reads (.safetensors, hf://ORG/NAME)")
    parser.add_argument("--out", default=None, help="output file, e.g. model.safetensors or model.onnx")
    parser.add_argument("--format", choices=("safetensors", "onnx"), default=None,
                        help="format of --out (default: onnx when --out ends in .onnx, else safetensors); "
                             "onnx needs pip install 'vcmr[onnx]'")
    parser.add_argument("--hub_dir", "--hub-dir", default=None,
                        help="output folder for the Hugging Face Hub: model.safetensors, config.json "
                             "and a model card README.md (load back with vcmr.load_model(DIR) or hf://ORG/NAME)")
    parser.add_argument("--overwrite", action="store_true",
                        help="let --hub_dir be a folder that already holds files (its model.safetensors, "
                             "config.json and README.md are replaced, other files kept)")
    parser.add_argument("--license", default="mit", help="licence written in the model card (default mit)")
    parser.add_argument("--repo_id", "--repo-id", default=None,
                        help="ORG/NAME the model will be uploaded to: the card's usage snippet loads "
                             "hf://ORG/NAME (default: ORG/<folder name>)")
    parser.add_argument("--hear_check", "--hear-check", action="store_true",
                        help="run the HEAR validator's checks on the model (vcmr.hear_validator) and "
                             "put the result in the model card and config.json")
    parser.add_argument("--results", default=None,
                        help="a results folder of `vcmr evaluate`: every global_metrics.json under it "
                             "(and any comparison.md) goes into the model card's tagging section")


def run(args) -> int:
    from vcmr.io.hub import check_hub_dir, export_hub_dir
    from vcmr.io.model_file import export_checkpoint
    if not args.out and not args.hub_dir:
        raise VcmrError("vcmr export needs --out FILE.safetensors or --hub_dir FOLDER (or both)")
    if (args.format or ("onnx" if str(args.out or "").lower().endswith(".onnx") else None)) == "onnx":
        return run_onnx(args)
    card_only = [flag for flag, v in (("--repo_id", args.repo_id), ("--hear_check", args.hear_check),
                                      ("--results", args.results)) if v]
    if card_only and not args.hub_dir:
        raise VcmrError(f"{', '.join(card_only)} describe the model card: give --hub_dir FOLDER too")
    if args.out:  # both targets checked before either is written
        check_output_file(args.out, f"--out {args.out!r}", [args.ckpt])
    # Locks beside the targets (a file inside --hub_dir would be uploaded with the model).
    locks = [lock_output_file(t, f"{flag} {t!r}") for flag, t in
             (("--out", args.out), ("--hub_dir", args.hub_dir)) if t]
    try:
        if args.hub_dir:
            check_hub_dir(args.ckpt, Path(args.hub_dir), args.overwrite)
        for target in filter(None, (args.out, args.hub_dir)):
            hub = target == args.hub_dir
            model = (export_hub_dir(args.ckpt, target, args.license, args.overwrite, args.repo_id,
                                    _hear_check if args.hear_check else None, args.results)
                     if hub else export_checkpoint(args.ckpt, target))
            extra = f", {len(model.tags)} tags" if model.tags else ""
            extra += f", joint space {model.joint_size}-D" if model.joint_size else ""
            what = "model.safetensors, config.json and README.md in " if hub else ""
            print(f"exported stage {model.stage!r} model ({model.embedding_size}-D embeddings, "
                  f"{model.segment_samples} samples at {model.sample_rate} Hz{extra}) to {what}{target}")
    finally:
        for lock in locks:
            lock.release()
    return 0


def run_onnx(args) -> int:
    """``--format onnx``: the model (any file vcmr.load_model reads) -> one ONNX file."""
    import vcmr
    from vcmr.io.onnx_file import OPSET, export_onnx
    if args.hub_dir or not args.out:
        raise VcmrError("--format onnx writes one file: give --out FILE.onnx and no --hub_dir "
                        "(export the Hub folder in a second run)")
    check_output_file(args.out, f"--out {args.out!r}", [args.ckpt])
    lock = lock_output_file(args.out, f"--out {args.out!r}")
    try:
        model = vcmr.load_model(args.ckpt, "cpu")
        names = export_onnx(model, args.out)
    finally:
        lock.release()
    print(f"exported stage {model.stage!r} model to ONNX (opset {OPSET}): input waveform "
          f"(batch, {model.segment_samples}) at {model.sample_rate} Hz -> {', '.join(names)}; {args.out}")
    return 0
def _hear_check(model) -> dict:
    from vcmr.hear_validator import hear_report  # vcmr.hear: only when asked for
    report = hear_report(model)
    verdict = "passes" if report["passed"] else f"FAILS ({report['error']})"
    print(f"HEAR validator checks: {verdict}" + (f"; warnings: {'; '.join(report['warnings'])}"
                                                if report["warnings"] else ""))
    return report
