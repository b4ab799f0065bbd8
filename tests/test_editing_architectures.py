"""Every registered architecture takes an edit end to end, and only the edited matrices change."""

import pytest
import torch
from test_stats import CONFIGS, tiny_model

from langedit_mini.data.datasets import EditRequest
from langedit_mini.editing import EditConfig, EditingSession
from langedit_mini.editing.methods import settings_with
from langedit_mini.editing.registry import get_method
from langedit_mini.model.architecture import detect_architecture
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.model.values import ValueSettings

TEXTS = [
    "The capital of the country Chile is Santiago.",
    "Die Hauptstadt des Landes Peru ist Lima.",
    "问：日本的首都是什么？答：东京",
    "La ville Lyon se trouve dans le pays France.",
    "Q: Which is the currency of the country Japan? A: Yen",
] * 8
REQUESTS = [
    EditRequest(prompt="Q: What is the capital of the country {}? A:", subject="Chile", target="Lima", lang="en"),
    EditRequest(prompt="问：{}的首都是什么？答：", subject="日本", target="柏林", lang="zh", joiner=""),
]


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("method", ["LangEdit-exact", "FT"])
def test_tiny_model_takes_an_edit_and_only_edited_matrices_change(name, method, tokenizer):
    model = tiny_model(name, tokenizer)
    architecture = detect_architecture(model)
    layers = (0, 1)
    statistics = key_second_moments(model, tokenizer, TEXTS, list(layers), cache_dir=None, progress=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = settings_with(get_method(method), {"alpha": 1.0, "leftover_fraction": 0.5}, strict=False)
    config = EditConfig(method=method, layers=layers, values=ValueSettings(steps=3), settings=settings)
    session = EditingSession(model, tokenizer, config, statistics)
    record = session.apply(REQUESTS)
    assert set(record.deltas) == set(layers)
    edited = {architecture.mlp_out.format(layer=layer) + ".weight" for layer in layers}
    changed = {k for k, v in session.model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and changed <= edited, changed - edited
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # the caller's model


def test_a_gemma3_edit_is_written_where_its_memory_is_and_leaves_unrelated_outputs(tokenizer):
    """Gemma 3 normalises the MLP output before the residual stream. Written where the memory ``W k = m``
    lives (each layer's residual change mapped back through the norm), one batch moves the residual stream at
    the edited layer to its target values and barely touches unrelated prompts, whether the value step added
    ``delta`` to the MLP output before the norm (``site="mlp"``) or to the residual stream (``site="residual"``,
    the default); written as for Llama (the residual's change put into ``m`` itself), it overshoots by an order
    of magnitude and disturbs the unrelated prompts far more."""
    from dataclasses import replace

    from langedit_mini.data.datasets import load_pocket
    from langedit_mini.data.schedules import distinct_subjects
    from langedit_mini.editing import EditingSession, default_config
    from langedit_mini.model.architecture import detect_architecture
    from langedit_mini.model.hub import tiny_random_model
    from langedit_mini.model.keys import subject_states
    from langedit_mini.model.statistics import key_second_moments
    from langedit_mini.model.values import compute_target_values
    from langedit_mini.pocket import covariance_texts

    model = tiny_random_model(tokenizer, "gemma3_text")
    requests, _ = load_pocket(languages=["en"])
    batch, unrelated = distinct_subjects(requests, 4, 0), [r.question for r in distinct_subjects(requests, 40, 1)]
    statistics = key_second_moments(model, tokenizer, covariance_texts()[:300], [1], cache_dir=None, progress=False)
    encoded = tokenizer(unrelated, return_tensors="pt", padding=True)
    with torch.no_grad():
        before = model(**encoded).logits.log_softmax(-1)
    results = {}
    for label, site, architecture in (
        ("memory", "mlp", detect_architecture(model)),
        ("residual", "residual", detect_architecture(model)),
        ("as llama", "residual", replace(detect_architecture(model), mlp_out_norm=None)),
    ):
        values = {"steps": 20, "learning_rate": 0.5, "site": site}
        config = default_config("MEMIT", "tiny-random", layers=(1,), values=values)
        values = compute_target_values(model, tokenizer, architecture, batch, 1, config.values)
        session = EditingSession(model, tokenizer, config, statistics, architecture=architecture)
        session.apply(batch)
        reached = subject_states(session.model, tokenizer, architecture, batch, 1, "hidden")
        missed = ((reached - values.z).norm(dim=0) / (values.z - values.hidden).norm(dim=0)).mean()
        with torch.no_grad():
            after = session.model(**encoded).logits.log_softmax(-1)
        mask = encoded["attention_mask"].bool()
        results[label] = (float(missed), float((before.exp() * (before - after)).sum(-1)[mask].mean()))
    for site in ("memory", "residual"):
        assert results[site][0] < 0.3 < 3 < results["as llama"][0]  # the residual stream reaches z
        assert results[site][1] < 1e-3 and results[site][1] < results["as llama"][1] / 10  # KL, unrelated
