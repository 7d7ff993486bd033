"""Imports flow one way (GUIDE: "shared pieces move down, callers stay up"), and the core
install's ``import vcmr; vcmr.load_model(...)`` path stays free of the heavy extras.

The import graph is read from the source with ``ast``: every ``import`` and ``from ... import``
of a vcmr module, at module level or inside a function, counts. It is then checked at every
level of the package tree: between modules, and between packages with every module of a
package (or subpackage) collapsed into one node. A top-level module such as ``vcmr/config.py``
is a node of its own at the package level, so ``vcmr.train`` importing ``vcmr.evaluate`` while
anything in ``vcmr.evaluate`` imports ``vcmr.train`` is a cycle even when no two modules import
each other.
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from conftest import ROOT
from embed_helpers import tiny_checkpoint

PACKAGE = ROOT / "vcmr"
# What the core install (torch, numpy, soundfile, soxr, safetensors) must never import.
HEAVY = ("pytorch_lightning", "lightning", "av", "scenedetect", "cv2", "transformers", "ray")


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """``vcmr.a.b`` -> its file, for every module of the package (``vcmr.a`` for ``a/__init__.py``)."""
    names = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from X import ...`` names, with relative imports (``from . import x``) resolved."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(source: str, module: str, names: set[str], is_package: bool = False) -> set[str]:
    """The modules of ``names`` that the code of ``module`` imports, anywhere in it.

    ``from m import x`` counts ``m.x`` when ``x`` is a module, else ``m``;
    ``importlib.import_module("m")`` with a literal name counts too.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    # ``import vcmr.a.b`` names a module whose parents exist: keep the deepest known one
    out = set()
    for name in found:
        while name and name not in names:
            name = name.rpartition(".")[0]
        if name:
            out.add(name)
    return out - {module}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of the package it imports."""
    names = module_names(package)
    return {m: imports_of(p.read_text(), m, set(names), p.name == "__init__.py") for m, p in names.items()}


def collapse(graph: dict[str, set[str]], depth: int) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """The graph with every module cut to its first ``depth`` name parts (``vcmr.train.tagging``
    -> ``vcmr.train`` at depth 2): node -> {node it imports: [(module, imported module)]}.
    Imports within one node are left out."""
    def node(m: str) -> str:
        return ".".join(m.split(".")[:depth])
    out: dict[str, dict[str, list[tuple[str, str]]]] = {node(m): {} for m in graph}
    for m, targets in graph.items():
        for t in targets:
            if node(t) != node(m):
                out[node(m)].setdefault(node(t), []).append((m, t))
    return out


def find_cycle(edges: dict[str, dict[str, list]] | dict[str, set[str]]) -> list[str] | None:
    """One cycle of a directed graph as ``[a, b, ..., a]``, or None when it has none (depth-first
    search; nodes and their targets visited in sorted order, so the answer is reproducible)."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = "open"
        path.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == "open":
                return path[path.index(w):] + [w]
            if w not in state:
                cycle = visit(w)
                if cycle:
                    return cycle
        path.pop()
        state[v] = "done"
        return None

    for v in sorted(edges):
        if v not in state:
            cycle = visit(v)
            if cycle:
                return cycle
    return None


def cycles_at_every_level(graph: dict[str, set[str]]) -> list[str]:
    """For each depth of the package tree, one cycle if there is one, explained edge by edge
    with the modules that make each edge."""
    problems = []
    for depth in range(2, max(len(m.split(".")) for m in graph) + 1):
        level = collapse(graph, depth)
        cycle = find_cycle(level)
        if cycle:
            steps = list(zip(cycle, cycle[1:]))
            # a module cycle when every step is one module importing the next, else packages
            kind = "modules" if all((a, b) in level[a][b] for a, b in steps) else "packages"
            lines = [f"{a} -> {b} ({', '.join(f'{m} imports {t}' for m, t in sorted(level[a][b])[:3])})"
                     for a, b in steps]
            problems.append(f"cycle between {kind} at depth {depth}: {' -> '.join(cycle)}\n  "
                            + "\n  ".join(lines))
    return problems


# ------------------------------------------------------------------------- the checker itself
def test_the_analysis_sees_every_kind_of_import():
    names = {"vcmr", "vcmr.a", "vcmr.a.x", "vcmr.a.y", "vcmr.b", "vcmr.b.z", "vcmr.c", "vcmr.d", "vcmr.e"}
    source = textwrap.dedent("""
        import os
        import vcmr.b.z as zed
        from vcmr.a import x, helper
        from . import y
        from .. import c

        def later():
            from vcmr.d import thing  # inside a function: counts as well
            import importlib
            return importlib.import_module("vcmr.e")
        """)
    found = imports_of(source, "vcmr.a.w", names)
    assert found == {"vcmr.b.z", "vcmr.a.x", "vcmr.a", "vcmr.a.y", "vcmr.c", "vcmr.d", "vcmr.e"}
    # in a package's __init__, ``from . import y`` is relative to the package itself
    assert imports_of("from . import y\n", "vcmr.a", names, is_package=True) == {"vcmr.a.y"}
    real = module_names()
    assert {"vcmr", "vcmr.cli", "vcmr.metrics.tagging", "vcmr.demo.run"} <= set(real)


def test_the_checker_finds_a_cycle_between_packages_that_no_two_modules_make():
    # train.fit -> evaluate.metrics and evaluate.probe -> train.heads: no module cycle, a package cycle
    graph = {"vcmr.train.fit": {"vcmr.evaluate.metrics", "vcmr.config"},
             "vcmr.train.heads": {"vcmr.config"},
             "vcmr.evaluate.metrics": set(),
             "vcmr.evaluate.probe": {"vcmr.train.heads"},
             "vcmr.config": set()}
    assert find_cycle(graph) is None
    problems = cycles_at_every_level(graph)
    assert len(problems) == 1 and "between packages at depth 2" in problems[0]
    assert "vcmr.evaluate -> vcmr.train -> vcmr.evaluate" in problems[0]
    assert "vcmr.evaluate.probe imports vcmr.train.heads" in problems[0]
    assert "vcmr.train.fit imports vcmr.evaluate.metrics" in problems[0]
    # moving the shared piece down (here: the metrics into their own package) breaks the cycle
    fixed = {**graph, "vcmr.train.fit": {"vcmr.metrics.tagging"}, "vcmr.metrics.tagging": set()}
    del fixed["vcmr.evaluate.metrics"]
    assert cycles_at_every_level(fixed) == []


def test_the_checker_finds_module_cycles_and_cycles_between_subpackages():
    modules = {"vcmr.x.a": {"vcmr.x.b"}, "vcmr.x.b": {"vcmr.x.c"}, "vcmr.x.c": {"vcmr.x.a"}}
    assert find_cycle(modules) == ["vcmr.x.a", "vcmr.x.b", "vcmr.x.c", "vcmr.x.a"]
    [problem] = cycles_at_every_level(modules)
    assert "between modules at depth 3" in problem
    nested = {"vcmr.d.run": {"vcmr.d.synth.music"}, "vcmr.d.synth.music": {"vcmr.d.report"},
              "vcmr.d.report": {"vcmr.errors"}, "vcmr.d.synth.tags": {"vcmr.d.run"}, "vcmr.errors": set()}
    assert [p.split(":")[0] for p in cycles_at_every_level(nested)] == [
        "cycle between packages at depth 3"]  # vcmr.d.run -> vcmr.d.synth -> vcmr.d.run


# ------------------------------------------------------------------------------- on vcmr itself
def test_no_import_cycle_between_vcmr_packages_or_modules():
    problems = cycles_at_every_level(import_graph())
    assert not problems, ("import cycles (move the shared piece down into a module both import):\n"
                          + "\n".join(problems))


def test_nothing_below_the_demo_imports_it():
    """The demo (and its synthetic data) sits on top: only the commands may import it."""
    graph = import_graph()
    users = sorted(m for m, targets in graph.items() if not m.startswith(("vcmr.demo", "vcmr.commands"))
                   and any(t == "vcmr.demo" or t.startswith("vcmr.demo.") for t in targets))
    assert not users, users


def test_core_load_model_path_imports_no_heavy_extra(tmp_path):
    from vcmr.io.model_file import export_checkpoint
    ckpt = tiny_checkpoint(tmp_path / "last.ckpt", "music")
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


def test_the_command_line_parses_without_torch():
    """`vcmr <command> --help` answers at once: the command modules import torch (2-3 s) and the
    extras only in their ``run`` (the lazy imports each command module names)."""
    code = ("import sys, importlib, vcmr.cli\n"
            "for module, _, _ in vcmr.cli.COMMANDS.values():\n"
            "    importlib.import_module('vcmr.commands.' + module)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {('torch',) + HEAVY!r})\n"
            "assert not bad, bad\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr


def test_decoding_processes_load_without_torch():
    """The decoding processes of `vcmr prepare` (spawned, one per worker) import the local engine
    and with it the frame-encoder registry; torch loads only where an encoder is built."""
    code = ("import sys, vcmr.prepare.local_engine, vcmr.prepare.frame_encoders\n"
            "assert 'torch' not in sys.modules\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stderr
