"""Reliability cases of the editing pipeline (issue 7): numerical trouble, long inputs, safe loading."""

import ast
import random
from pathlib import Path

import pytest
import torch

from langedit_mini.core.validation import ProjectionError
from langedit_mini.data.datasets import EditRequest, load_pocket
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import default_config
from langedit_mini.model.architecture import detect_architecture, edited_weight
from langedit_mini.model.statistics import SecondMoment
from langedit_mini.pocket import POCKET_EDIT_LAYERS

PACKAGE = Path(__file__).resolve().parents[1] / "langedit_mini"
REQUESTS, _ = load_pocket()


def test_covariance_with_nan_is_refused_when_the_session_starts(pocket):
    model, tokenizer, statistics = pocket
    broken = {}
    for layer, moment in statistics.items():
        covariance = moment.covariance.clone()
        covariance[0, 0] = float("nan")
        broken[layer] = SecondMoment(layer, covariance, moment.n_samples)
    for method in ("MEMIT", "AlphaEdit", "LangEdit-published", "LangEdit-exact"):
        with pytest.raises(ProjectionError, match="NaN or Inf"):
            EditingSession(model, tokenizer, default_config(method), broken)


def test_a_model_with_nan_weights_gives_an_error_not_an_edit(pocket):
    model, tokenizer, statistics = pocket
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    architecture = detect_architecture(session.model)
    with torch.no_grad():  # keys (the input of the edited matrix) become NaN
        session.model.model.layers[0].mlp.up_proj.weight[0, 0] = float("nan")
    before = edited_weight(session.model, architecture, POCKET_EDIT_LAYERS[0]).clone()
    with pytest.raises(ValueError, match="NaN or Inf"):
        session.apply(random.Random(1).sample([r for r in REQUESTS if r.lang == "en"], 2))
    assert torch.equal(before, edited_weight(session.model, architecture, POCKET_EDIT_LAYERS[0]))
    assert session.records == []


def test_a_tau_that_leaves_no_null_space_is_refused_with_the_numbers(pocket):
    model, tokenizer, statistics = pocket
    smallest = min(torch.linalg.eigvalsh(m.covariance).min().item() for m in statistics.values())
    for method in ("AlphaEdit", "LangEdit-published", "LangEdit-exact"):
        with pytest.raises(ProjectionError, match="leaves no null space.*smallest eigenvalue"):
            EditingSession(
                model, tokenizer, default_config(method, tau=smallest / 2, leftover_fraction=None), statistics
            )


def test_a_subject_too_long_for_the_model_is_refused_naming_the_request(pocket):
    model, tokenizer, statistics = pocket
    limit = model.config.max_position_embeddings
    long_subject = " ".join(["Novaterra"] * limit)
    request = EditRequest(
        prompt="Q: What is the capital of {}? A:", subject=long_subject, target="Paris", lang="en", fact_id="long"
    )
    session = EditingSession(model, tokenizer, default_config("MEMIT"), statistics)
    with pytest.raises(ValueError, match=rf"request long.*tokens.*at most {limit}"):
        session.apply([request])
    assert session.records == []


def test_a_long_subject_within_the_context_is_edited(pocket):
    model, tokenizer, statistics = pocket
    subject = "the Most Serene and Sovereign Federated Republic of the Northern Coral Islands"
    request = EditRequest(
        prompt="Q: What is the capital of {}? A:", subject=subject, target="Paris", lang="en", fact_id="long-ok"
    )
    session = EditingSession(model, tokenizer, default_config("MEMIT"), statistics)
    record = session.apply([request])
    assert torch.isfinite(record.deltas[POCKET_EDIT_LAYERS[0]]).all()


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_the_package_never_unpickles_and_never_trusts_remote_code():
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                assert not any(name.split(".")[0] in ("pickle", "dill", "joblib", "cloudpickle") for name in names), (
                    path
                )
        for call in _calls(tree):
            function = ast.unparse(call.func)
            # torch.load only with weights_only=True (tensors and plain containers; no object is built)
            safe = function == "torch.load" and any(
                k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                for k in call.keywords
            )
            assert safe or function not in ("torch.load", "np.load", "numpy.load", "pd.read_pickle"), (
                f"{path}: {function}"
            )
            for keyword in call.keywords:
                if keyword.arg == "trust_remote_code":
                    assert ast.unparse(keyword.value) in ("False", "trust_remote_code"), f"{path}: {ast.unparse(call)}"
