"""The layer and cut guide: a band where the effects are, and cut tables whose numbers agree with the spectrum."""

import pandas as pd
import pytest
import torch
from test_stats import tiny_model

from langedit_mini.interface.guide import cut_table, layer_and_cut_guide, suggest_band
from langedit_mini.model.statistics import SecondMoment


def test_suggest_band_picks_the_contiguous_layers_with_the_largest_effect():
    effects = [0.01, 0.3, 0.2, 0.25, 0.02, 0.28]
    summary = pd.DataFrame({"site": "mlp", "position": "subject last", "layer": range(6), "indirect_effect": effects})
    assert suggest_band(summary, 3) == (1, 2, 3)
    assert suggest_band(summary, 1) == (1,)
    with pytest.raises(ValueError, match="size must be"):
        suggest_band(summary, 7)


def test_cut_table_counts_the_null_space_and_the_discarded_trace():
    values = torch.tensor([1e-6, 1e-5, 1e-3, 1.0, 2.0, 3.0], dtype=torch.float64)
    table = cut_table({4: SecondMoment(4, torch.diag(values), 100)}, leftovers=(0.01,), taus=(0.5, 10.0))
    by_cut = table.set_index("cut")
    assert by_cut.loc["leftover=1%", "null_dim"] == 3 and by_cut.loc["leftover=1%", "discarded_share"] < 0.01
    assert by_cut.loc["tau=0.5", "null_dim"] == 3
    assert by_cut.loc["tau=10", "null_dim"] == 6 and by_cut.loc["tau=10", "discarded_share"] == pytest.approx(1.0)
    assert (table["capacity (edits)"] == table.null_dim).all() and (table.d_k == 6).all()


def test_the_guide_runs_on_a_model(tokenizer):
    model = tiny_model("llama", tokenizer)
    facts = [{"prompt": "Q: What is the capital of the country Chile? A:", "subject": "Chile", "answer": "Santiago"}]
    guide = layer_and_cut_guide(
        model, tokenizer, facts, ["Some text to preserve.", "Another one."], samples=2, band_size=2
    )
    assert len(guide["band"]) == 2 and guide["band"][1] == guide["band"][0] + 1
    assert set(guide["cuts"].layer) == {0, 1, 2}
