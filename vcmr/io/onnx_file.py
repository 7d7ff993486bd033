"""ONNX export: one analysis window of audio -> the embeddings ``EmbeddingModel.embed`` gives.

    vcmr export model.safetensors --format onnx --out model.onnx

The graph has one input, ``waveform`` (batch, segment_samples) float32 at the model's
``sample_rate``, and these outputs (all float32, batch first):

* ``embedding`` (batch, embedding_size): the SampleCNN output, ``embed(..., space="encoder")``;
* ``joint`` (batch, joint_size), stage 2 only: the audio projector output, ``space="joint"``;
* ``tag_probs`` (batch, n_tags), stage 3 only: the tagging head's sigmoid outputs per window
  (``predict_tags`` is their mean over the windows of a song).

The batch axis is dynamic; the length axis is fixed at ``segment_samples``: SampleCNN's stem
and poolings reduce exactly ``conv_size * pool_size ** n_blocks`` samples to one time step, and
a longer input leaves a time axis that the flattening before the heads would mix into the
features. Long audio is cut into windows outside the graph (docs/using-models.md, "ONNX").

Opset :data:`OPSET` (17), written by torch's TorchScript-based exporter (``dynamo=False``; the
``torch.export``-based one needs the onnxscript package). The file's metadata holds
``format`` ("vcmr-onnx"), ``vcmr_version``, ``stage``, ``sample_rate``, ``segment_samples``,
``outputs`` and, for stage 3, ``tags`` (JSON), so numpy-only users can read everything they need.
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from vcmr._version import __version__
from vcmr.errors import VcmrError
from vcmr.inference import EmbeddingModel
from vcmr.paths import atomic_output, check_output_file

OPSET = 17
FORMAT = "vcmr-onnx"
INPUT = "waveform"


class OnnxExportError(VcmrError):
    """ONNX export is not possible here (missing package) or failed."""


class _Graph(nn.Module):
    """The exported computation: encoder, then the stage's extra outputs."""

    def __init__(self, model: EmbeddingModel):
        super().__init__()
        self.encoder = model.net.encoder
        self.projector = model.net.projector if model.stage == "video" else None
        self.head = model.net.head if model.stage == "tagging" else None

    def forward(self, waveform: torch.Tensor):
        emb = self.encoder(waveform)
        extra = [self.projector(emb)] if self.projector is not None else []
        extra += [torch.sigmoid(self.head(emb))] if self.head is not None else []
        return (emb, *extra)


def output_names(model: EmbeddingModel) -> list[str]:
    """The graph's outputs for ``model``'s stage, in order."""
    return ["embedding"] + {"video": ["joint"], "tagging": ["tag_probs"]}.get(model.stage, [])


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise OnnxExportError("ONNX export needs the onnx package: pip install 'vcmr[onnx]' "
                              "(onnxruntime, in the same extra, runs the file)") from None
    return onnx


def _metadata(model: EmbeddingModel, names: list[str]) -> dict[str, str]:
    meta = {"format": FORMAT, "vcmr_version": __version__, "stage": model.stage,
            "sample_rate": str(model.sample_rate), "segment_samples": str(model.segment_samples),
            "outputs": json.dumps(names)}
    if model.tags is not None:
        meta["tags"] = json.dumps(model.tags)
    return meta


def export_onnx(model: EmbeddingModel, out: str | Path, opset: int = OPSET) -> list[str]:
    """Write ``model`` as an ONNX file at ``out`` (atomically: temporary name, then rename;
    never over a symlink or special file); returns the output names."""
    onnx = _require_onnx()
    out = check_output_file(out, f"--out {str(out)!r}")
    names = output_names(model)
    graph = _Graph(copy.deepcopy(model).to("cpu")).eval()  # the caller's model stays where it is
    example = torch.zeros(2, model.segment_samples)
    axes = {name: {0: "batch"} for name in [INPUT, *names]}
    with atomic_output(out) as tmp, warnings.catch_warnings():
        # the tracer notes SampleCNN's Python-level shape checks (constants in the graph, which
        # is right: the length is fixed) and torch notes that this exporter is the older one
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(graph, (example,), str(tmp), input_names=[INPUT], output_names=names,
                              dynamic_axes=axes, opset_version=opset, dynamo=False)
        except Exception as e:  # torch raises several types; the message is what helps
            raise OnnxExportError(f"ONNX export of {model.source} failed ({type(e).__name__}: "
                                  f"{str(e)[:300]})") from None
        proto = onnx.load(str(tmp))
        onnx.helper.set_model_props(proto, _metadata(model, names))
        onnx.checker.check_model(proto)
        onnx.save(proto, str(tmp))
    return names
