"""Causal tracing: restoring a site gives back what flows through it, and nothing else."""

import pytest
from test_stats import tiny_model

from langedit_mini.model.tracing import causal_trace, subject_span, trace_summary

FACTS = [
    {"prompt": "Q: What is the capital of the country Chile? A:", "subject": "Chile", "answer": "Santiago"},
    {"prompt": "Frage: Welche Währung hat Peru? Antwort:", "subject": "Peru", "answer": "+51", "lang": "de"},
]


@pytest.fixture(scope="module")
def traced(tokenizer):
    model = tiny_model("llama", tokenizer)
    return causal_trace(model, tokenizer, FACTS, band=[0, 1], samples=4, noise=1.0), model


def test_restoring_the_last_block_at_the_last_position_restores_everything(traced):
    frame, model = traced
    layers = model.config.num_hidden_layers
    last = frame[(frame.site == "hidden") & (frame.position == "last") & (frame.layer == layers - 1)]
    assert len(last) == len(FACTS)
    assert (last.indirect_effect - last.total_effect).abs().max() < 1e-6
    assert (last.total_effect.abs() > 0).all()  # the noise changed the prediction, so the check means something


def test_a_site_after_which_nothing_reads_it_has_no_effect(traced):
    frame, model = traced
    # the subject's last token is not the last position: its state after the last block reaches no prediction
    late = frame[(frame.site == "hidden") & (frame.position == "subject last") & (frame.layer == frame.layer.max())]
    assert late.indirect_effect.abs().max() < 1e-7
    summary = trace_summary(frame)
    assert set(summary.site) == {"mlp", "hidden", "mlp band"}
    assert {"indirect_effect", "total_effect", "share_of_total"} <= set(summary.columns)


def test_subject_span_and_errors(tokenizer, traced):
    _, model = traced
    ids, tokens = subject_span(tokenizer, FACTS[0]["prompt"], "Chile")
    assert tokenizer.decode([ids[i] for i in tokens]).strip() == "Chile"
    with pytest.raises(ValueError, match="is not in"):
        causal_trace(model, tokenizer, [dict(FACTS[0], subject="Peru")], samples=1)
    with pytest.raises(ValueError, match="out of range"):
        causal_trace(model, tokenizer, FACTS, layers=[99], samples=1)
    with pytest.raises(ValueError, match="at least one fact"):
        causal_trace(model, tokenizer, [])


def test_the_subject_positions_agree_for_a_one_token_subject_and_unknown_positions_are_refused(tokenizer, traced):
    """A one-token subject's first token, last token and span are the same position, so restoring any of them
    gives the same probability; a three-token subject is counted as three."""
    from langedit_mini.model.tracing import ALL_POSITIONS

    _, model = traced
    one = causal_trace(model, tokenizer, [dict(FACTS[0], subject="the")], samples=2, noise=1.0, positions=ALL_POSITIONS)
    assert set(one.position) == set(ALL_POSITIONS) and (one.subject_tokens == 1).all()
    restored = one.pivot_table(index=["site", "layer"], columns="position", values="p_restored")
    assert (restored["subject first"] - restored["subject last"]).abs().max() < 1e-7
    assert (restored["subject span"] - restored["subject last"]).abs().max() < 1e-7
    three = causal_trace(model, tokenizer, FACTS[:1], samples=2, noise=1.0, positions=("subject span", "last"))
    assert set(three.position) == {"subject span", "last"} and (three.subject_tokens == 3).all()
    with pytest.raises(ValueError, match="positions must be among"):
        causal_trace(model, tokenizer, FACTS, samples=1, positions=("subject middle",))
