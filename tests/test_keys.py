"""Keys, memories and hidden states at the subject's last token: one pass per batch, stopped at the site."""

import pytest
import torch
from test_editing_architectures import REQUESTS
from test_stats import CONFIGS, tiny_model

from langedit_mini.model.architecture import detect_architecture, get_module, layer_state, mlp_out_module
from langedit_mini.model.keys import SITES, _rows_for, compute_keys, subject_states


def _full_pass_states(model, tokenizer, architecture, layer, site, contexts):
    """The same states caught by a hook during a whole forward pass (logits and all), row by row."""
    rows = _rows_for(tokenizer, REQUESTS, prefixes=contexts)
    if site == "hidden":
        module, attach = get_module(model, architecture.layer.format(layer=layer)), "forward"
    else:
        module, attach = mlp_out_module(model, architecture, layer), "pre" if site == "key" else "forward"
    caught = []
    if attach == "pre":
        handle = module.register_forward_pre_hook(lambda m, inputs: caught.append(inputs[0]))
    else:
        handle = module.register_forward_hook(lambda m, i, output: caught.append(layer_state(output)))
    try:
        with torch.no_grad():
            model(input_ids=rows.input_ids, attention_mask=rows.attention_mask)
    finally:
        handle.remove()
    states = caught[0][torch.arange(len(rows.lengths)), rows.subject_position]
    per_request = [states[rows.request_index == i].mean(0) for i in range(len(REQUESTS))]
    return torch.stack(per_request, dim=1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_site_equals_a_whole_pass_and_the_later_blocks_never_run(name, tokenizer):
    model = tiny_model(name, tokenizer)
    architecture = detect_architecture(model)
    calls = []
    last = get_module(model, architecture.layer.format(layer=model.config.num_hidden_layers - 1))
    watchers = [m.register_forward_hook(lambda *_: calls.append(1)) for m in (last, model.get_output_embeddings())]
    for site in SITES:
        for contexts in (False, True):
            got = subject_states(model, tokenizer, architecture, REQUESTS, 0, site, contexts=contexts)
            assert calls == []  # stopped in block 0 of 2: neither the last block nor the LM head ran
            for watcher in watchers:
                watcher.remove()
            expected = _full_pass_states(model, tokenizer, architecture, 0, site, contexts)
            watchers = [
                m.register_forward_hook(lambda *_: calls.append(1)) for m in (last, model.get_output_embeddings())
            ]
            assert got.shape == expected.shape == (expected.shape[0], len(REQUESTS))
            assert torch.allclose(got, expected.float(), atol=1e-6, rtol=1e-5), (site, contexts)
    for watcher in watchers:
        watcher.remove()
    keys = compute_keys(model, tokenizer, architecture, REQUESTS, 1)
    assert torch.equal(keys, subject_states(model, tokenizer, architecture, REQUESTS, 1, "key", contexts=True))
    assert not any(module._forward_hooks or module._forward_pre_hooks for module in model.modules())


def test_an_unknown_site_is_refused_by_name(tokenizer):
    model = tiny_model("llama", tokenizer)
    with pytest.raises(ValueError, match="unknown site 'value'.*key, memory, hidden"):
        subject_states(model, tokenizer, detect_architecture(model), REQUESTS, 0, "value")
