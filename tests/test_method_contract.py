"""The contract every registered method and update rule keeps (in the spirit of scikit-learn's common checks).

Each closed-form method of the registry builds its rule from a synthetic ``C0``; the checks run
against every one: ``propose`` changes nothing, shapes, the float32 path, capacity never
increases, determinism, a refused batch leaves the state alone. The registry itself: the method
list is derived from it, and no code outside it branches on a method's name.
"""

import ast
from pathlib import Path

import nbformat
import pytest
import torch

from langedit_mini.core.synthetic import SyntheticConfig, make_world
from langedit_mini.core.validation import CapacityError
from langedit_mini.editing.defaults import default_config
from langedit_mini.editing.methods import settings_with
from langedit_mini.editing.registry import (
    CLOSED_FORM_METHODS,
    METHODS,
    NULL_SPACE_METHODS,
    REGISTRY,
    closed_form,
    get_method,
)
from langedit_mini.model.statistics import SecondMoment

ROOT = Path(__file__).resolve().parents[1]
WORLD = make_world(SyntheticConfig(d_k=48, d_v=5, edits_per_language=4, n_languages=4, preserved_samples=400, seed=5))
MOMENT = {0: SecondMoment(0, WORLD.covariance, WORLD.config.preserved_samples)}


def make_rule(name, dtype=torch.float64, **settings):
    method = get_method(name)
    values = settings_with(method, {"leftover_fraction": 0.1, "alpha": 1.0, **settings}, strict=False)
    return method.make_rules(values, MOMENT, (0,), dtype=dtype)[0]


def tensors_of(rule) -> dict[str, torch.Tensor]:
    """Every tensor the rule holds, however deep (projector, basis, running moments), by path."""
    found = {}

    def walk(value, path, depth=0):
        if isinstance(value, torch.Tensor):
            found[path] = value.clone()
        elif depth < 4 and hasattr(value, "__dict__"):
            for name, item in vars(value).items():
                walk(item, f"{path}.{name}", depth + 1)

    walk(rule, "rule")
    return found


def test_the_method_list_is_the_registry():
    assert METHODS == tuple(REGISTRY) == ("FT", "MEMIT", "AlphaEdit", "LangEdit-published", "LangEdit-exact")
    assert CLOSED_FORM_METHODS == METHODS[1:] and closed_form(["LangEdit-exact", "FT"]) == ["LangEdit-exact"]
    assert NULL_SPACE_METHODS == ("AlphaEdit", "LangEdit-published", "LangEdit-exact")
    assert not get_method("FT").needs_statistics and get_method("MEMIT").needs_statistics
    with pytest.raises(ValueError, match="unknown method 'ROME'; choose one of FT, MEMIT"):
        get_method("ROME")


def test_each_method_takes_only_its_own_settings():
    assert default_config("FT", steps=7).settings.steps == 7
    assert default_config("LangEdit-exact", alpha=3.0).settings.alpha == 3.0
    with pytest.raises(ValueError, match="MEMIT has no setting 'alpha'; its settings are mom2_weight"):
        default_config("MEMIT", alpha=3.0)
    with pytest.raises(ValueError, match="FT has no setting 'tau'"):
        default_config("FT", tau=1e-3)
    with pytest.raises(ValueError, match="give exactly one of tau"):
        default_config("AlphaEdit", tau=1e-3, leftover_fraction=0.1).validate()
    assert (
        default_config("AlphaEdit", tau=1e-3).settings.leftover_fraction is None
    )  # the cut given replaces the fraction


def method_name_comparisons(source: str) -> list[str]:
    """Comparisons and membership tests with a method's name as a literal, on either side (``method == "FT"``,
    ``"FT" in methods``, ``name not in ("FT", "MEMIT")``), and the pandas forms ``.eq("FT")``, ``.ne(...)``,
    ``.isin([...])``: each as the line of code it is on."""
    names = set(METHODS)

    def literal(node) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(literal(item) for item in node.elts)

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(literal(side) for side in [node.left, *node.comparators]):
            found.append(ast.unparse(node))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("eq", "ne", "isin")
            and any(literal(argument) for argument in node.args)
        ):
            found.append(ast.unparse(node))
    return found


def test_the_guard_finds_a_method_name_on_either_side():
    code = """
a = method == "FT"
b = "LangEdit-exact" in methods
c = name not in ("MEMIT", "other")
d = frame.method.eq("AlphaEdit")
e = frame.method.isin(["LangEdit-published"])
f = method == other and "x" in names
"""
    assert len(method_name_comparisons(code)) == 5


def test_no_code_outside_the_registry_branches_on_a_method_name():
    """Comparisons with a method's name belong in the registry; elsewhere code asks the method object."""
    sources = {
        path: path.read_text()
        for folder in ("langedit_mini", "scripts", "benchmarks")
        for path in (ROOT / folder).rglob("*.py")
    }
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):  # the cells' code, not the JSON's escaped text
        sources[path] = "\n".join(
            cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"
        )
    offending = [
        f"{path.relative_to(ROOT)}: {line}" for path, text in sources.items() for line in method_name_comparisons(text)
    ]
    assert len(sources) > 60 and offending == []


@pytest.mark.parametrize("name", CLOSED_FORM_METHODS)
def test_propose_changes_nothing_and_is_deterministic(name):
    rule = make_rule(name)
    rule.commit(WORLD.edit_keys[0])
    before, capacity = tensors_of(rule), rule.capacity_left
    first = rule.propose(WORLD.residuals[1], WORLD.edit_keys[1])
    second = rule.propose(WORLD.residuals[1], WORLD.edit_keys[1])
    after = tensors_of(rule)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert rule.capacity_left == capacity and torch.equal(first, second)
    again = make_rule(name)
    again.commit(WORLD.edit_keys[0])
    assert torch.equal(again.propose(WORLD.residuals[1], WORLD.edit_keys[1]), first)  # a fresh rule agrees


@pytest.mark.parametrize("name", CLOSED_FORM_METHODS)
def test_update_shape_and_the_float32_path(name):
    d_v, d_k = WORLD.residuals[0].shape[0], WORLD.config.d_k
    exact = make_rule(name).propose(WORLD.residuals[0], WORLD.edit_keys[0])
    single = make_rule(name, dtype=torch.float32).propose(WORLD.residuals[0].float(), WORLD.edit_keys[0].float())
    assert exact.shape == single.shape == (d_v, d_k)
    assert exact.dtype == torch.float64 and single.dtype == torch.float32
    relative = float(torch.linalg.matrix_norm(single.double() - exact) / torch.linalg.matrix_norm(exact))
    assert relative < 1e-3, relative


@pytest.mark.parametrize("name", CLOSED_FORM_METHODS)
def test_capacity_never_increases_and_a_refused_batch_changes_nothing(name):
    rule = make_rule(name)
    seen = [rule.capacity_left]
    for keys in WORLD.edit_keys:
        rule.check_capacity(keys)  # every batch of this world fits
        rule.commit(keys)
        seen.append(rule.capacity_left)
    if seen[0] is None:  # no notion of capacity: always None, and every batch fits
        assert set(seen) == {None}
        return
    assert all(later <= earlier for earlier, later in zip(seen, seen[1:])), seen
    too_many = torch.randn(
        WORLD.config.d_k, rule.capacity_left + 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)
    )
    before = tensors_of(rule)
    with pytest.raises(CapacityError, match="null space exhausted"):
        rule.check_capacity(too_many)
    with pytest.raises(CapacityError):
        rule.propose(torch.zeros(WORLD.residuals[0].shape[0], too_many.shape[1], dtype=torch.float64), too_many)
    after = tensors_of(rule)
    assert all(torch.equal(before[k], after[k]) for k in before) and rule.capacity_left == seen[-1]
