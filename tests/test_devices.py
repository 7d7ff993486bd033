"""One device rule (vcmr.devices.resolve_device) for embed, load_model, evaluation and prepare."""
import pytest
import torch

from vcmr.devices import cuda_count, resolve_device
from vcmr.errors import VcmrError

GPU = torch.device("cuda") if cuda_count() else None


def test_auto_is_cuda_when_there_is_one_else_cpu():
    expected = GPU or torch.device("cpu")
    assert resolve_device(None) == resolve_device("auto") == resolve_device(" Auto ") == expected


def test_names_and_devices_pass_through():
    assert resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(GPU is not None, reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("name", ["cuda", "gpu", "cuda:1"])
def test_cuda_without_a_gpu_names_the_setting_and_the_fix(name):
    with pytest.raises(VcmrError, match=f"--device {name}: this machine has no usable CUDA GPU.*--device cpu"):
        resolve_device(name, "--device")


@pytest.mark.skipif(GPU is None, reason="needs a CUDA GPU")
def test_gpu_is_cuda_and_indices_are_checked():
    assert resolve_device("gpu").type == "cuda"
    with pytest.raises(VcmrError, match=f"only {cuda_count()} CUDA device"):
        resolve_device(f"cuda:{cuda_count()}")


def test_not_a_device_name():
    with pytest.raises(VcmrError, match="accelerator 'tpu9' is not a device name"):
        resolve_device("tpu9", "accelerator")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available here")
def test_mps_where_there_is_none():
    with pytest.raises(VcmrError, match="MPS is not available here"):
        resolve_device("mps")
