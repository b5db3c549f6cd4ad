"""Every list of names in cymlp equals its registry, and the package has no import circle.

The registries: activation names and kernel codes (``cymlp.activations``, from the
``cpdef enum`` of ``_activations.pxd``), bias placements (``cymlp._network``), solvers
(``cymlp._mlp.SOLVERS``), text encoders (``cymlp.text.ENCODERS``). The command line,
the workflow's config schema, its plots and tables, and the NumPy reference must agree
with them; the reference keeps its own list on purpose (it is the independent oracle),
so it is compared here rather than imported.
"""
import importlib.util
import pathlib
import re
import sys

import pytest
from cymlp._activations import Activation
from cymlp._mlp import SOLVERS

from cymlp import _reference, activations, cli
from cymlp._network import BIAS_PLACEMENTS
from cymlp.text import ENCODERS

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_activation_names_come_from_the_kernel_enum():
    assert list(activations.CODES) == [m.name[len("ACT_"):].lower() for m in Activation]
    assert list(activations.CODES.values()) == [int(m) for m in Activation]
    assert set(activations.PROPERTIES) == set(activations.CODES)
    assert activations.NAMES == tuple(activations.CODES) + tuple(activations.ALIASES)
    assert activations.code("logistic") == activations.code("sigmoid")
    assert "step" not in activations.TRAINABLE


def test_the_reference_implements_every_activation():
    assert set(_reference.ACTIVATIONS) | set(_reference._ALIASES) == set(activations.NAMES)
    assert _reference._ALIASES == activations.ALIASES
    assert set(_reference.SOLVERS) == set(SOLVERS)
    assert set(_reference.ENCODERS) == set(ENCODERS)


def _choices(parser, command, flag):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    action = next(a for a in sub._actions if flag in a.option_strings)
    return tuple(action.choices)


def test_command_line_choices_are_the_registries():
    parser = cli.build_parser()
    assert _choices(parser, "train", "--activation") == activations.NAMES
    assert _choices(parser, "train", "--bias") == BIAS_PLACEMENTS
    assert _choices(parser, "train", "--solver") == tuple(SOLVERS)
    assert _choices(parser, "train", "--encoder") == ENCODERS


def test_workflow_schema_enums_are_the_registries():
    yaml = pytest.importorskip("yaml")
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    defs = schema["$defs"]
    # the schema offers what can be trained: every activation but 'step'
    trainable = [a for a in activations.NAMES if activations.info(a).trainable]
    assert defs["activation"]["enum"] == trainable
    assert defs["bias"]["enum"] == list(BIAS_PLACEMENTS)
    assert sorted(defs["solver"]["enum"]) == sorted(SOLVERS)
    assert defs["encoder"]["enum"] == list(ENCODERS)
    lr_names = defs["lr"]["oneOf"][1]["propertyNames"]["enum"]
    assert lr_names == ["default"] + trainable


def _load_script(name):
    path = REPO / "workflow" / "scripts" / f"{name}.py"
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_workflow_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def test_workflow_plots_and_tables_use_the_registries():
    pytest.importorskip("matplotlib")
    pytest.importorskip("pandas")
    plotting = _load_script("plotting")
    tables = _load_script("tables")
    assert plotting.ORDER == list(activations.NAMES)
    assert plotting.SATURATING == {"sigmoid", "logistic", "tanh", "arctan"}
    assert plotting.RECTIFIED == {a for a in activations.NAMES
                                  if activations.info(a).family == "rectifying"}
    assert tables.PREFERRED_ACTIVATIONS == list(activations.NAMES)


# ------------------------------------------------------------------ import circles
_IMPORT = re.compile(r"^(?:from\s+(cymlp[\w.]*)\s+c?import\s+([\w, ()]+)|import\s+(cymlp[\w.]*))",
                     re.MULTILINE)


def _imports_of(path, modules):
    """The modules of ``modules`` that ``path`` imports (or cimports) at module level:
    import statements at the start of a line (those inside functions run only after
    every module is loaded)."""
    found = set()
    for match in _IMPORT.finditer(path.read_text(encoding="utf-8")):
        base = match.group(1) or match.group(3)
        names = [base]
        if match.group(2):
            names += [f"{base}.{n.strip(' ()')}" for n in match.group(2).split(",")]
        found.update(n for n in names if n in modules)
    return found


def test_the_package_has_no_import_circle():
    """The graph of module-level imports between cymlp's modules (Python and Cython)
    is acyclic, so no module can ever be seen half-initialised."""
    root = REPO / "cymlp"
    paths = {f"cymlp.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    paths.update({f"cymlp.{p.stem}": p for p in root.glob("*.pyx")})
    graph = {name: _imports_of(path, paths) - {name} for name, path in paths.items()}
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                pytest.fail("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # the scan sees real edges: the estimators import the file format, the engine its
    # kernels
    assert "cymlp.io" in graph["cymlp._estimator"]
    assert "cymlp._blas" in graph["cymlp._mlp"]
