"""The 6 x 6 cross-lingual matrix, and editing models held in bfloat16 / float16."""

import random

import pytest
import torch

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.languages import LANGUAGES
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import default_config
from langedit_mini.evaluation.edit_metrics import cross_lingual, cross_lingual_matrix, evaluate_requests
from langedit_mini.model.architecture import detect_architecture, edited_weight
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.pocket import POCKET_EDIT_LAYERS, covariance_texts, load_pocket_model

REQUESTS, _ = load_pocket()


def test_cross_lingual_matrix_of_one_batch_per_language(pocket):
    model, tokenizer, statistics = pocket
    facts = random.Random(7).sample(sorted({r.fact_id for r in REQUESTS if r.lang == "en"}), 12)
    lookup = {(r.fact_id, r.lang): r for r in REQUESTS}
    # two different facts edited in each language, all in one session
    edited = [lookup[(fact, LANGUAGES[i // 2])] for i, fact in enumerate(facts)]
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    for language in LANGUAGES:
        session.apply([r for r in edited if r.lang == language])
    frame = cross_lingual(session.model, tokenizer, edited, REQUESTS)
    assert len(frame) == 12 * 6 and frame.attrs["missing"] == 0
    matrix = cross_lingual_matrix(frame)
    assert list(matrix.index) == list(LANGUAGES) and list(matrix.columns) == list(LANGUAGES)
    assert matrix.notna().all().all()
    # the diagonal is the reliability of the edits themselves
    own = evaluate_requests(session.model, tokenizer, edited)
    reliability = own[own.metric == "reliability"].groupby("lang").teacher_forced.mean()
    for language in LANGUAGES:
        assert matrix.loc[language, language] == pytest.approx(reliability[language])
    assert min(matrix.values.diagonal()) >= 0.75, matrix
    # before editing, no language says the new targets
    unedited = cross_lingual_matrix(cross_lingual(model, tokenizer, edited, REQUESTS), "exact_match")
    assert unedited.values.max() <= 0.25, unedited


@pytest.fixture(scope="module")
def half_precision(pocket):
    """The pocket model in a half-precision dtype and its statistics, made once per dtype (float16 matmuls
    are slow on a CPU: its statistics pass alone takes about 40 s)."""
    made = {}

    def get(dtype):
        if dtype not in made:
            model, _ = load_pocket_model(dtype=dtype)
            statistics = key_second_moments(
                model, pocket[1], covariance_texts(), list(POCKET_EDIT_LAYERS), cache_dir=None, progress=False
            )
            made[dtype] = model, statistics
        return made[dtype]

    return get


@pytest.mark.parametrize("dtype", [torch.bfloat16, pytest.param(torch.float16, marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", ["MEMIT", "LangEdit-exact"])
def test_half_precision_models_keep_their_dtype_and_only_the_edited_matrix_changes(
    pocket, half_precision, dtype, method
):
    _, tokenizer, statistics32 = pocket
    model, statistics = half_precision(dtype)
    architecture = detect_architecture(model)
    for layer, moment in statistics.items():  # statistics are accumulated in float64 whatever the model's dtype
        assert moment.covariance.dtype == torch.float64
        gap = (moment.covariance - statistics32[layer].covariance.double()).norm() / statistics32[
            layer
        ].covariance.norm()
        assert gap < 5e-2, gap
    requests = random.Random(8).sample([r for r in REQUESTS if r.lang == "es"], 4)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    session = EditingSession(model, tokenizer, default_config(method), statistics)
    record = session.apply(requests)
    edited_names = set()
    for layer in POCKET_EDIT_LAYERS:
        weight = edited_weight(session.model, architecture, layer)
        assert weight.dtype == dtype
        assert torch.isfinite(weight).all()
        written = weight.double() - edited_weight(model, architecture, layer).double()
        expected = record.deltas[layer].double()
        # what was written is the float64 update rounded to the model's dtype
        assert (written - expected).abs().max() <= 4 * torch.finfo(dtype).eps * weight.double().abs().max() + 1e-6
        assert written.norm() > 0
    for name, parameter in session.model.named_parameters():
        if not torch.equal(parameter, before[name]):
            edited_names.add(name)
    assert edited_names == {architecture.mlp_out.format(layer=layer) + ".weight" for layer in POCKET_EDIT_LAYERS}
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())  # the caller's model is untouched
    results = evaluate_requests(session.model, tokenizer, requests)
    reliability = results[results.metric == "reliability"].teacher_forced.mean()
    assert reliability >= 0.75, f"{method} in {dtype}: reliability {reliability:.2f}"
