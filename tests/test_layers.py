"""The package's folders are its import layers: a lower layer never imports a higher one.

core (the math, torch only) < data < pocket (the bundled world) < model < editing < evaluation <
study < interface (the one-call API and the command line); ``pocket.build`` (regeneration only)
sits above all and nothing else imports it. And what
defines a study run, for staleness, is the code it imports (``study.provenance.package_hash``).
"""

import ast
from pathlib import Path

import pytest

from langedit_mini.study.provenance import imported_modules, package_hash

PACKAGE = Path(__file__).resolve().parents[1] / "langedit_mini"
LAYERS = ["core", "data", "pocket", "model", "editing", "evaluation", "study", "interface"]


def layer(module: str) -> int:
    parts = module.split(".")
    if parts[1:3] == ["pocket", "build"]:
        return len(LAYERS)  # regeneration: above everything
    return LAYERS.index(parts[1]) if len(parts) > 1 else -1


def package_modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the package imports absolutely"
            names.add(node.module)
    return {name for name in names if name.startswith("langedit_mini.")}


def test_every_module_sits_in_a_layer():
    modules = package_modules()
    assert len(modules) > 30
    for module in modules:
        if module != "langedit_mini":
            assert module.split(".")[1] in LAYERS, f"{module} is in no layer folder"


@pytest.mark.parametrize("module", sorted(package_modules()))
def test_no_module_imports_a_higher_layer(module):
    own = layer(module) if module != "langedit_mini" else 0
    higher = sorted(name for name in imports_of(package_modules()[module]) if layer(name) > own)
    assert higher == [], f"{module} (layer {own}) imports higher layers"


def test_nothing_at_run_time_imports_the_regeneration_code():
    for entry in (
        "langedit_mini",
        "langedit_mini.study",
        "langedit_mini.editing",
        "langedit_mini.evaluation",
        "langedit_mini.study.runner",
        "langedit_mini.model.hub",
        "langedit_mini.evaluation.general_tasks",
    ):
        closure = imported_modules(entry)
        assert entry in closure and not [m for m in closure if m.startswith("langedit_mini.pocket.build")], entry


def test_the_run_hash_follows_the_code_a_run_imports():
    closure = imported_modules()
    assert {
        "langedit_mini.editing.methods",
        "langedit_mini.core.updates",
        "langedit_mini.model.values",
        "langedit_mini",
        "langedit_mini.study",
    } <= set(closure)
    # bookkeeping and the real-LLM code cannot change a pocket run
    assert not {
        "langedit_mini.study.runner",
        "langedit_mini.study.store",
        "langedit_mini.study.readings",
        "langedit_mini.study.provenance",
        "langedit_mini.model.hub",
        "langedit_mini.data.downloads",
        "langedit_mini.evaluation.general_tasks",
    } & set(closure)
    assert package_hash() == package_hash() and len(package_hash()) == 16
    assert package_hash("langedit_mini.core.updates") != package_hash()  # another entry, other code
