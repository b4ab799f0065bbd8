"""Inputs that used to be accepted and meant nothing get a clear error (or, for a cut that protects
nothing, a warning that names the null-space size)."""

import pytest
import torch
import transformers
from test_stats import tiny_model

from langedit_mini.core.projection import NullSpaceProjector, ProtectsNothingWarning
from langedit_mini.data.datasets import EditRequest, load_pocket
from langedit_mini.data.languages import check_languages
from langedit_mini.data.schedules import build_schedule
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import default_config
from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference
from langedit_mini.evaluation.scoring import score

REQUEST = EditRequest(prompt="The capital of {} is", subject="Chile", target="Lima", lang="en")


def test_a_single_language_string_is_refused_not_read_letter_by_letter():
    with pytest.raises(ValueError, match=r"list of language codes such as \['de'\]"):
        check_languages("de")
    with pytest.raises(ValueError, match="such as"):
        load_pocket(languages="de")
    requests, _ = load_pocket(languages=["de"])
    with pytest.raises(ValueError, match="such as"):
        build_schedule(requests, "mono", "de", edits_per_language=2, batch_size=2)
    assert check_languages(None) == ("en", "de", "nl", "es", "fr", "zh")
    with pytest.raises(ValueError, match="distinct"):
        check_languages(["de", "de"])
    with pytest.raises(ValueError, match="unknown language code 'xx'"):
        check_languages(["xx"])


def test_a_cut_above_every_eigenvalue_warns_that_it_protects_nothing(tokenizer):
    from langedit_mini.model.statistics import SecondMoment

    covariance = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
    with pytest.warns(ProtectsNothingWarning, match=r"whole key space \(3 of 3 dimensions\)"):
        projector = NullSpaceProjector.from_covariance(covariance, tau=10.0)
    assert projector.null_dim == 3
    model = tiny_model("llama", tokenizer)
    torch.manual_seed(0)
    keys = torch.randn(model.config.intermediate_size, 4 * model.config.intermediate_size, dtype=torch.float64)
    statistics = {0: SecondMoment(0, keys @ keys.T / keys.shape[1], keys.shape[1])}
    with pytest.warns(ProtectsNothingWarning):
        EditingSession(model, tokenizer, default_config("AlphaEdit", "tiny-random", tau=1e6, layers=(0,)), statistics)


def test_models_that_predict_no_next_token_are_refused_with_the_reason(tokenizer):
    base = transformers.LlamaModel(tiny_model("llama", tokenizer).config)
    with pytest.raises(ValueError, match="no language-model head"):
        evaluate_requests(base, tokenizer, [REQUEST])
    bert = transformers.BertForMaskedLM(
        transformers.BertConfig(
            vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        )
    )
    with pytest.raises(ValueError, match="not a causal language model"):
        score(bert, tokenizer, ["The capital of Chile is"], ["Lima"])
    model = tiny_model("llama", tokenizer)
    with pytest.raises(TypeError, match="seem swapped"):
        locality_reference(tokenizer, model, [REQUEST])
    with pytest.raises(TypeError, match="seem swapped"):
        EditingSession(tokenizer, model, default_config("MEMIT", "tiny-random"), {})


def test_an_item_longer_than_the_context_is_refused_naming_it(pocket_model):
    model, tokenizer = pocket_model  # 128 positions
    long_question = "Q: " + "very " * 200 + "long? A:"
    request = EditRequest(
        prompt="The capital of {} is",
        subject="Chile",
        target="Lima",
        lang="en",
        locality_prompt=long_question,
        locality_answer="Paris",
        fact_id="too-long",
    )
    with pytest.raises(ValueError, match=r"locality prompt .*longer than the model's context \(128 tokens\)"):
        locality_reference(model, tokenizer, [request])
    with pytest.raises(ValueError, match=r"request too-long, locality \(gold\) .*context \(128 tokens\)"):
        evaluate_requests(model, tokenizer, [request])
    with pytest.raises(ValueError, match=r"item 1 .*context \(128 tokens\)"):
        score(model, tokenizer, ["The capital of Chile is", long_question], ["Santiago", "Paris"])
    # within the context nothing changes
    assert score(model, tokenizer, ["The capital of Chile is"], ["Santiago"]).teacher_forced[0] >= 0
