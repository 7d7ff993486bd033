"""`vcmr evaluate` / `vcmr train tagging` report bad input as one clear line (no traceback)."""
import torch
from conftest import TINY_OVERRIDES

from vcmr.cli import main
from vcmr.config import config_to_dict, load_config
from vcmr.io.checkpoint import checkpoint_hparams
from vcmr.models.stages import build


def test_evaluate_rejects_stage1_checkpoint(tmp_path, capsys):
    cfg = load_config("music", overrides=TINY_OVERRIDES)
    torch.save({"hyper_parameters": checkpoint_hparams("music", config_to_dict(cfg)),
                "state_dict": {f"net.{k}": v for k, v in build("music", cfg).state_dict().items()}},
               tmp_path / "s1.ckpt")
    code = main(["evaluate", "--dataset_dir", str(tmp_path), "--ckpt", str(tmp_path / "s1.ckpt")])
    err = capsys.readouterr().err
    assert code == 1 and "without a tagging head" in err and "vcmr train tagging" in err
    code = main(["evaluate", "--dataset_dir", str(tmp_path), "--ckpt", str(tmp_path / "none.ckpt")])
    assert code == 1 and "not found" in capsys.readouterr().err


def test_finetune_bad_dataset_dir(tmp_path, capsys):
    code = main(["train", "tagging", "--dataset", "mtg-jamendo", "--dataset_dir", str(tmp_path / "x"),
                 "--pretrained_ckpt_path", "none", *TINY_OVERRIDES])
    assert code == 1 and "not a folder" in capsys.readouterr().err
