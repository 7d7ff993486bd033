"""What training prints: quiet by default, Lightning's details with ``--verbose`` /
``VCMR_VERBOSE=1`` (as ``vcmr demo --verbose`` sets it)."""
import pytest

from conftest import TINY_OVERRIDES
from vcmr.cli import main
from vcmr.config import load_config
from vcmr.train.music import train_music


@pytest.mark.parametrize("verbose", [False, True])
def test_training_console_is_quiet_unless_verbose(synth_audio_dir, tmp_path, monkeypatch, capfd, caplog, verbose):
    """No model-summary table, device lines or Lightning 'Tip' advertisement by default;
    VCMR_VERBOSE=1 (vcmr demo --verbose) brings Lightning's details back."""
    monkeypatch.setenv("VCMR_VERBOSE", "1" if verbose else "0")
    cfg = load_config("music", overrides=TINY_OVERRIDES + [
        "--dataset_dir", str(synth_audio_dir), "--log_dir", str(tmp_path), "--batch_size", "8",
        "--workers", "0", "--progress_bar", "false", "--max_steps", "1", "--m_epochs", "1",
        "--accelerator", "cpu", "--devices", "1"])
    train_music(cfg)
    out = "".join(capfd.readouterr()) + caplog.text  # Lightning's lines are log records
    assert "💡" not in out  # never: advertisements
    assert ("Params" in out) == verbose  # the model-summary table
    assert ("GPU available" in out) == verbose


def test_training_commands_take_verbose(synth_audio_dir, tmp_path, monkeypatch, capfd, caplog):
    """`vcmr train music --verbose` brings the model summary back, as VCMR_VERBOSE=1 does."""
    monkeypatch.setenv("VCMR_VERBOSE", "0")  # restored after the test
    assert main(["train", "music", "--verbose", *TINY_OVERRIDES, "--dataset_dir", str(synth_audio_dir),
                 "--log_dir", str(tmp_path), "--batch_size", "8", "--workers", "0",
                 "--progress_bar", "false", "--max_steps", "1", "--m_epochs", "1",
                 "--accelerator", "cpu", "--devices", "1"]) == 0
    assert "Params" in "".join(capfd.readouterr()) + caplog.text
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--verbose" in capfd.readouterr().out
