"""``vcmr export``: a checkpoint of any stage -> a portable .safetensors model file.

    vcmr export runs/mus_pretrain/version_0/checkpoints/last.ckpt --out model.safetensors
"""


def add_arguments(parser):
    parser.add_argument("ckpt", help="a .ckpt written by vcmr training (stage 1, 2 or 3)")
    parser.add_argument("--out", required=True, help="output file, e.g. model.safetensors")


def run(args) -> int:
    from vcmr.export import export_checkpoint
    model = export_checkpoint(args.ckpt, args.out)
    extra = f", {len(model.tags)} tags" if model.tags else ""
    extra += f", joint space {model.joint_size}-D" if model.joint_size else ""
    print(f"exported stage {model.stage!r} model ({model.embedding_size}-D embeddings, "
          f"{model.segment_samples} samples at {model.sample_rate} Hz{extra}) to {args.out}")
    return 0
