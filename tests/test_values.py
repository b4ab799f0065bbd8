"""Target values: the suffix-only optimisation against the reference recipe, and what each step runs."""

import random
from dataclasses import replace

import pytest
import torch
import transformers
from test_editing_architectures import REQUESTS
from test_stats import CONFIGS, tiny_model

import langedit_mini.model.values as values
from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.languages import CONTEXT_PREFIXES, LANGUAGES
from langedit_mini.editing.defaults import default_config
from langedit_mini.model.architecture import detect_architecture, get_module
from langedit_mini.model.values import ValueSettings, compute_target_values
from langedit_mini.pocket import POCKET_EDIT_LAYERS


@pytest.fixture(scope="module")
def pocket_requests():
    """Two requests per language, drawn with a fixed seed."""
    requests, _ = load_pocket(languages=LANGUAGES)
    by_language = {lang: [r for r in requests if r.lang == lang] for lang in LANGUAGES}
    rng = random.Random(0)
    return [request for lang in LANGUAGES for request in rng.sample(by_language[lang], 2)]


@pytest.fixture(scope="module")
def both_recipes(pocket_model, pocket_requests):
    """The pocket defaults for 12 requests of six languages, by the suffix path and by the reference recipe."""
    model, tokenizer = pocket_model
    architecture = detect_architecture(model)
    settings = default_config("LangEdit-exact").values
    layer = POCKET_EDIT_LAYERS[-1]
    return {
        reuse: compute_target_values(
            model, tokenizer, architecture, pocket_requests, layer, replace(settings, reuse_prefix=reuse), seed=0
        )
        for reuse in (True, False)
    }


def test_suffix_path_reaches_the_reference_recipes_values_on_the_pocket_model(both_recipes):
    fast, reference = both_recipes[True], both_recipes[False]
    assert fast.steps_taken == reference.steps_taken
    assert max(fast.steps_taken) > 1  # an optimisation took place, so the comparison means something
    moved = (reference.z - reference.hidden).norm(dim=0)
    assert float(moved.min()) > 0.1
    # The loss is the same up to rounding; after tens of Adam steps z agrees far below how far it moved.
    difference = (fast.z - reference.z).norm(dim=0)
    assert float((difference / moved).max()) < 1e-3
    assert max(abs(a - b) for a, b in zip(fast.final_nll, reference.final_nll)) < 1e-3
    assert torch.equal(fast.hidden, reference.hidden)


@pytest.mark.parametrize("head", ["every position", "read positions"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_suffix_path_equals_the_reference_recipe_on_every_architecture(name, head, tokenizer, monkeypatch):
    if head == "read positions":  # the path of a large vocabulary: the head only where the loss reads
        monkeypatch.setattr(values, "FULL_HEAD_VOCABULARY", 0)
    model = tiny_model(name, tokenizer)
    architecture = detect_architecture(model)
    assert architecture.prefix_cache
    before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = ValueSettings(steps=5, stop_nll=1e-9)  # every step taken by every request
    for layer in (0, 1):
        fast, reference = (
            compute_target_values(
                model, tokenizer, architecture, REQUESTS, layer, replace(settings, reuse_prefix=reuse)
            )
            for reuse in (True, False)
        )
        assert fast.steps_taken == reference.steps_taken == [5, 5]
        moved = float((reference.z - reference.hidden).abs().max())
        assert moved > 1e-3
        assert float((fast.z - reference.z).abs().max()) < 1e-3 * moved
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    blocks = [get_module(model, architecture.layer.format(layer=i)) for i in range(2)]
    assert all("forward" not in block.__dict__ for block in blocks)  # the blocks' own forward is back


def test_an_architecture_the_table_does_not_know_runs_the_reference_recipe():
    model = transformers.AutoModelForCausalLM.from_config(CONFIGS["llama"]())
    model.config.model_type = "my_llama"
    paths = dict(mlp_out="model.layers.{layer}.mlp.down_proj", layer="model.layers.{layer}", final_norm="model.norm")
    assert not detect_architecture(model, lm_head="lm_head", **paths).prefix_cache
    assert detect_architecture(model, lm_head="lm_head", prefix_cache=True, **paths).prefix_cache


def _rows_run_per_step(model, architecture, layer):
    """Count the rows that reach block ``layer + 1`` while gradients are on (the optimisation steps;
    the set-up passes run without gradients)."""
    counted = []

    def count(module, args, kwargs):
        if torch.is_grad_enabled():
            states = args[0] if args else kwargs["hidden_states"]
            counted.append(states.shape[0])

    block = get_module(model, architecture.layer.format(layer=layer + 1))
    return counted, block.register_forward_pre_hook(count, with_kwargs=True)


@pytest.mark.parametrize("reuse_prefix", [True, False])
def test_finished_requests_are_not_run_again(pocket_model, pocket_requests, reuse_prefix):
    model, tokenizer = pocket_model
    architecture = detect_architecture(model)
    layer = POCKET_EDIT_LAYERS[-1]
    # A loose stopping rule, so requests stop after different numbers of steps.
    settings = ValueSettings(learning_rate=2.0, steps=12, stop_nll=1.5, clamp_norm_factor=1.5, weight_decay=0.1)
    requests = pocket_requests[:6]
    counted, handle = _rows_run_per_step(model, architecture, layer)
    try:
        result = compute_target_values(
            model, tokenizer, architecture, requests, layer, replace(settings, reuse_prefix=reuse_prefix), seed=0
        )
    finally:
        handle.remove()
    assert len(set(result.steps_taken)) > 1, result.steps_taken  # some stopped before others
    rows_per_request = [1 + len(CONTEXT_PREFIXES[r.lang]) + 1 for r in requests]  # prompts and the KL row
    expected = sum(steps * rows for steps, rows in zip(result.steps_taken, rows_per_request))
    assert sum(counted) == expected


def test_passes_split_to_bound_the_logits_give_the_same_values(pocket_model, pocket_requests, monkeypatch):
    model, tokenizer = pocket_model
    architecture = detect_architecture(model)
    settings = ValueSettings(learning_rate=2.0, steps=6, stop_nll=1e-9, clamp_norm_factor=1.5)
    requests = pocket_requests[:4]
    whole = compute_target_values(model, tokenizer, architecture, requests, 0, settings)
    counted, handle = _rows_run_per_step(model, architecture, 0)
    monkeypatch.setattr(values, "LOGITS_BUDGET", 1)  # one row a pass
    try:
        split = compute_target_values(model, tokenizer, architecture, requests, 0, settings)
    finally:
        handle.remove()
    assert max(counted) == 1 and len(counted) == 6 * len(requests) * 5  # one row per pass
    assert float((split.z - whole.z).abs().max()) < 1e-4 * float((whole.z - whole.hidden).abs().max())


def test_length_groups_cover_every_row_once_and_trade_padding_for_calls():
    widths = torch.tensor([4, 9, 4, 13, 5, 9, 12, 4])
    for cost in (0, 8, 10**6):
        groups = values._length_groups(widths, cost)
        indices = torch.cat(groups).tolist()
        assert sorted(indices) == list(range(len(widths)))
        maxima = [int(widths[g].max()) for g in groups]
        minima = [int(widths[g].min()) for g in groups]
        assert all(maxima[i] < minima[i + 1] for i in range(len(groups) - 1))  # contiguous in width
    assert len(values._length_groups(widths, 0)) == len(set(widths.tolist()))  # no padding at all
    assert len(values._length_groups(widths, 10**6)) == 1  # calls too dear to split


def test_replaced_forwards_are_restored_after_an_error():
    module = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="inside"):
        with values._forwards_replaced([module], [lambda x: x]):
            assert torch.equal(module(torch.ones(1, 2)), torch.ones(1, 2))
            raise RuntimeError("inside")
    assert "forward" not in module.__dict__ and module(torch.ones(1, 2)).shape == (1, 2)


@pytest.mark.parametrize("name", ["gemma2", "gemma3_text"])
def test_both_value_sites_take_the_suffix_path_on_a_normalised_architecture(name, tokenizer):
    """Where a norm follows the MLP output, delta goes into the residual stream (the default) or into the MLP
    output before the norm: the suffix path equals the reference recipe at both, and the two sites differ."""
    model = tiny_model(name, tokenizer)
    architecture = detect_architecture(model)
    assert architecture.mlp_out_norm is not None
    results = {}
    for site in ("residual", "mlp"):
        settings = ValueSettings(steps=5, stop_nll=1e-9, site=site)
        fast, reference = (
            compute_target_values(model, tokenizer, architecture, REQUESTS, 1, replace(settings, reuse_prefix=reuse))
            for reuse in (True, False)
        )
        moved = float((reference.z - reference.hidden).abs().max())
        assert moved > 1e-3
        assert float((fast.z - reference.z).abs().max()) < 1e-3 * moved
        results[site] = fast.z
    assert float((results["residual"] - results["mlp"]).abs().max()) > 1e-2 * moved


def test_a_site_that_is_not_known_is_refused():
    with pytest.raises(ValueError, match="site must be one of residual, mlp, got 'attention'"):
        ValueSettings(site="attention").validate()


def test_a_step_runs_the_lm_head_only_where_the_loss_reads(pocket_model, pocket_requests, monkeypatch):
    """The suffix path computes logits at the target tokens' predicting positions and the KL rows' last
    positions, nowhere else: the head sees exactly those rows, in the set-up pass (the KL rows) and each step,
    and no other call (the passes run the model's base, without its head)."""
    model, tokenizer = pocket_model
    architecture = detect_architecture(model)
    requests = pocket_requests[:4]
    settings = ValueSettings(steps=3, stop_nll=1e-9)
    every_position = compute_target_values(model, tokenizer, architecture, requests, 0, settings)
    monkeypatch.setattr(values, "FULL_HEAD_VOCABULARY", len(tokenizer) - 1)  # as for a large vocabulary
    calls = []
    handle = model.get_output_embeddings().register_forward_pre_hook(
        lambda module, inputs: calls.append((torch.is_grad_enabled(), tuple(inputs[0].shape[:-1])))
    )
    try:
        result = compute_target_values(model, tokenizer, architecture, requests, 0, settings)
    finally:
        handle.remove()
    moved = float((every_position.z - every_position.hidden).abs().max())
    assert float((result.z - every_position.z).abs().max()) < 1e-4 * moved  # the same values up to rounding
    assert result.steps_taken == [3] * len(requests)
    _, spans, _ = values._target_rows(tokenizer, requests)
    targets = sum(end - start for start, end in spans)
    assert all(len(shape) == 1 for _, shape in calls)  # (k, d): the head at chosen positions, never per row
    selected = [(grad, shape[0]) for grad, shape in calls]
    assert sum(count for grad, count in selected if not grad) == len(requests)  # set-up: the KL rows only
    assert sum(count for grad, count in selected if grad) == 3 * (targets + len(requests))
