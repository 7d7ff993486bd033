"""Imports flow one way (GUIDE: "shared pieces move down, callers stay up"), and the core
install's ``import vcmr; vcmr.load_model(...)`` path stays free of the heavy extras."""
import ast
import subprocess
import sys
from pathlib import Path

import torch

from conftest import ROOT, TINY_OVERRIDES

PACKAGE = ROOT / "vcmr"
# What the core install (torch, numpy, soundfile, soxr, safetensors) must never import.
HEAVY = ("pytorch_lightning", "lightning", "av", "scenedetect", "cv2", "transformers", "ray")
# Cycles tolerated for now: none (the prepare pipeline receives its Ray runner as an argument).
KNOWN_CYCLES: list[list[str]] = []


def module_names() -> dict[str, Path]:
    """``vcmr.a.b`` -> its file, for every module of the package."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported(path: Path, names: dict[str, Path]) -> set[str]:
    """vcmr modules ``path`` imports anywhere (top level or inside functions); ``from m import x``
    counts ``m.x`` too when ``x`` is a module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "vcmr":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "vcmr"}
    return found & set(names)


def import_cycles() -> list[list[str]]:
    """Every cycle of the import graph, as the modules of each strongly connected component
    with more than one module (Tarjan's algorithm)."""
    names = module_names()
    graph = {m: imported(p, names) - {m} for m, p in names.items()}
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_analysis_sees_imports_inside_functions():
    names = module_names()
    assert "vcmr.io.load" in names and "vcmr" in names and "vcmr.io.safe" in names
    # vcmr/__init__.py imports vcmr.io.load only inside load_model: a lazy import still counts
    assert "vcmr.io.load" in imported(names["vcmr"], names)
    assert {"vcmr.inference", "vcmr.io.model_file", "vcmr.io.hub"} <= imported(names["vcmr.io.load"], names)


def test_no_two_vcmr_modules_import_each_other():
    cycles = [c for c in import_cycles() if c not in KNOWN_CYCLES]
    assert not cycles, ("import cycles (move the shared piece down into a module both import): "
                        + "; ".join(" <-> ".join(c) for c in cycles))


def tiny_stage1_checkpoint(path: Path) -> Path:
    """A stage-1 checkpoint in the layout training writes, built without Lightning."""
    from vcmr.io.checkpoint import checkpoint_hparams
    from vcmr.config import config_to_dict, load_config
    from vcmr.models.stages import build
    cfg = load_config("mus", None, TINY_OVERRIDES)
    torch.manual_seed(0)
    sd = {f"net.{k}": v for k, v in build("mus", cfg).state_dict().items()}
    torch.save({"state_dict": sd, "hyper_parameters": checkpoint_hparams("mus", config_to_dict(cfg))}, path)
    return path


def test_core_load_model_path_imports_no_heavy_extra(tmp_path):
    from vcmr.io.model_file import export_checkpoint
    ckpt = tiny_stage1_checkpoint(tmp_path / "last.ckpt")
    export_checkpoint(ckpt, tmp_path / "model.safetensors")
    code = (
        "import sys, numpy as np, vcmr\n"
        f"heavy = {HEAVY!r}\n"
        f"for src in ({str(ckpt)!r}, {str(tmp_path / 'model.safetensors')!r}):\n"
        "    m = vcmr.load_model(src, device='cpu')\n"
        "    assert m.embed(np.zeros(5000, np.float32), 16000).embeddings.shape == (3, 64)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr
