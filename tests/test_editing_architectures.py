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
