"""The house's layering: runtime modules import each other in one direction only (no cycle, not even through
imports inside functions), and never import the trainer, the CLI or TensorFlow."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "runtime"
FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "onnx", "flarelight.trainer", "flarelight.cli")


def runtime_imports() -> dict[str, set[str]]:
    """module name -> runtime modules it imports, anywhere in the file (top level or inside functions)."""
    mods = {p.stem for p in RUNTIME.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in RUNTIME.glob("*.py"):
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level == 1:
                    names = [base.split(".")[0]] if base else [a.name for a in node.names]
                elif base.startswith("flarelight.runtime"):
                    rest = base[len("flarelight.runtime"):].lstrip(".")
                    names = [rest.split(".")[0]] if rest else [a.name for a in node.names]
                else:
                    continue
                deps.update(n for n in names if n in mods)
        deps.discard(path.stem)
        graph[path.stem] = deps
    return graph


def test_runtime_has_no_import_cycle():
    graph = runtime_imports()
    assert len(graph) > 10 and graph["find"] >= {"model", "catalogue"}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(stack + [m, d])
            if d not in state:
                visit(d, stack + [m])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [])


def test_model_and_catalogue_do_not_reach_up():
    graph = runtime_imports()
    for low in ("model", "catalogue", "preprocess", "scored", "io", "kernels"):
        assert "find" not in graph[low] and "bulk" not in graph[low] and "plot" not in graph[low], low


def test_runtime_never_imports_training_stack():
    for path in RUNTIME.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN), f"{path.name}: {name}"


def test_importing_the_runtime_loads_no_heavy_stack_until_a_name_is_used():
    """``import flarelight.runtime`` loads the error classes only; the first use of a public name imports its module
    (numba, astropy, onnxruntime with it), and every public name resolves."""
    code = (
        "import sys, flarelight.runtime as R\n"
        "heavy = ['numba', 'astropy.table', 'onnxruntime', 'flarelight.runtime.catalogue']\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "R.find_flares\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "print(all(getattr(R, n) is not None for n in R.__all__), R.kernels.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[0] == "[]"
    assert out[1] == "['numba', 'astropy.table', 'onnxruntime', 'flarelight.runtime.catalogue']"
    assert out[2] == "True flarelight.runtime.kernels"
