"""The one-call API: EasyEdit-style requests in, an edited copy and a report with named metrics out."""

import pytest
import torch
from test_stats import tiny_model

from langedit_mini.data.datasets import load_pocket
from langedit_mini.editing.defaults import REFERENCE_DEFAULTS, ReferenceDefaultsWarning, default_config, defaults_for
from langedit_mini.interface import edit
from langedit_mini.interface.api import model_defaults_name

REQUESTS, _ = load_pocket(languages=["en"])


def weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def test_edit_writes_easyedit_requests_into_a_copy_and_reports_them(pocket):
    model, tokenizer, statistics = pocket
    chosen = REQUESTS[:3]
    before = weights(model)
    report = edit(
        model,
        tokenizer,
        {
            "prompts": [r.question for r in chosen],
            "subject": [r.subject for r in chosen],
            "target_new": [r.target for r in chosen],
            "rephrase_prompts": [r.paraphrase for r in chosen],
        },
        method="AlphaEdit",
        statistics=statistics,
    )
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())  # the caller's model
    assert report.model is report.session.model and report.model is not model
    assert list(report.table.columns[:5]) == ["prompt", "target", "before", "after", "target reached"]
    assert {"reliability TF", "reliability EM", "generality TF", "generality EM"} <= set(report.table.columns)
    assert list(report.summary.columns) == ["teacher-forced", "exact match", "n"]
    assert report.summary.loc["reliability", "n"] == 3
    # before: the unedited model did not say the new targets; after: exact match is the after text being the target
    assert (report.table.before != report.table.target).all()
    assert (report.table["reliability EM"] == (report.table.after == report.table.target)).all()
    assert report.table["reliability EM"].sum() >= 2 and report.summary.loc["reliability", "teacher-forced"] > 0.8
    assert "AlphaEdit on layers [0]" in repr(report)


def test_edit_on_a_model_without_defaults_needs_layers(tokenizer):
    model = tiny_model("llama", tokenizer)
    request = {"prompt": "The capital of Chile is", "subject": "Chile", "target": "Lima"}
    with pytest.raises(ValueError, match="cannot tell which model|no editing defaults"):
        edit(model, tokenizer, request, method="FT")
    with pytest.warns(ReferenceDefaultsWarning, match="reference values"):
        report = edit(model, tokenizer, request, method="FT", layers=(1,), steps=2)
    assert report.session.config.layers == (1,) and len(report.table) == 1
    with pytest.raises(ValueError, match="preserved-key statistics"), pytest.warns(ReferenceDefaultsWarning):
        edit(model, tokenizer, request, method="MEMIT", layers=(1,))


def test_a_model_without_defaults_takes_the_reference_values_with_its_layers():
    # the published recipe (llama-3-8b.json), not the values that only make a tiny random model fast
    with pytest.warns(ReferenceDefaultsWarning, match="some/new-model"):
        name = defaults_for("some/new-model", layers_given=True)
    assert name == REFERENCE_DEFAULTS
    config = default_config("AlphaEdit", name, layers=(3,))
    reference = default_config("AlphaEdit", "llama-3-8b")
    assert config.layers == (3,) and config.settings == reference.settings and config.values == reference.values
    assert default_config("MEMIT", name).settings.mom2_weight == 15000.0
    # a model with a file keeps its own values when only the layers are given
    assert defaults_for("Qwen/Qwen2.5-7B-Instruct", layers_given=True) == "qwen2.5-7b"
    assert defaults_for("pocket", layers_given=True) == "pocket"
    with pytest.raises(ValueError, match="no editing defaults"):
        defaults_for("some/new-model", layers_given=False)
    with pytest.raises(ValueError, match="cannot tell which model"):
        defaults_for(None, layers_given=False)


def test_the_pocket_models_are_recognised(pocket):
    model, _, _ = pocket
    assert model_defaults_name(model) == "pocket"
