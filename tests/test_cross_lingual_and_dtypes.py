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


#: Every 8th preserved-knowledge text (589 of 4710, about 30k tokens for d_k = 1024): half-precision matmuls
#: are slow on a CPU (the whole corpus took over a minute and a half per dtype on 2 cores), and what the test
#: checks (float64 accumulation close to float32's, the edit written in the model's dtype) needs no more.
HALF_PRECISION_TEXTS = covariance_texts()[::8]


@pytest.fixture(scope="module")
def half_precision(pocket):
    """The pocket model in a half-precision dtype, its statistics and the float32 model's on the same texts, made
    once per dtype."""
    made = {}

    def statistics_of(model):
        layers = list(POCKET_EDIT_LAYERS)
        return key_second_moments(model, pocket[1], HALF_PRECISION_TEXTS, layers, cache_dir=None, progress=False)

    def get(dtype):
        if "float32" not in made:
            made["float32"] = statistics_of(pocket[0])
        if dtype not in made:
            model, _ = load_pocket_model(dtype=dtype)
            made[dtype] = model, statistics_of(model)
        return (*made[dtype], made["float32"])

    return get


# Each dtype and each method once: the dtype handling (statistics, keys, values, the write) is the same code for
# every closed-form method, and an edit in half precision on a CPU takes about half a minute.
@pytest.mark.parametrize("method, dtype", [("MEMIT", torch.float16), ("LangEdit-exact", torch.bfloat16)])
def test_half_precision_models_keep_their_dtype_and_only_the_edited_matrix_changes(
    pocket, half_precision, dtype, method
):
    tokenizer = pocket[1]
    model, statistics, statistics32 = half_precision(dtype)
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
