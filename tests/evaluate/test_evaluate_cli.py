"""`vcmr evaluate` / `vcmr train tagging` report bad input as one clear line (no traceback)."""
from conftest import TINY_OVERRIDES
from embed_helpers import tiny_checkpoint

from vcmr.cli import main


def test_evaluate_rejects_stage1_checkpoint(tmp_path, capsys):
    tiny_checkpoint(tmp_path / "s1.ckpt", "music")
    code = main(["evaluate", "--dataset_dir", str(tmp_path), "--ckpt", str(tmp_path / "s1.ckpt")])
    err = capsys.readouterr().err
    assert code == 1 and "without a tagging head" in err and "vcmr train tagging" in err
    code = main(["evaluate", "--dataset_dir", str(tmp_path), "--ckpt", str(tmp_path / "none.ckpt")])
    assert code == 1 and "not found" in capsys.readouterr().err


def test_finetune_bad_dataset_dir(tmp_path, capsys):
    code = main(["train", "tagging", "--dataset", "mtg-jamendo", "--dataset_dir", str(tmp_path / "x"),
                 "--pretrained_ckpt_path", "none", *TINY_OVERRIDES])
    assert code == 1 and "not a folder" in capsys.readouterr().err
