"""Does the model read facts from the subject's position? A patching test of the locate-then-edit premise.

MEMIT, AlphaEdit and LangEdit write a new value at the subject's last token of an early-middle
layer, assuming the model later reads the fact from there. Test it: take two prompts that differ
only in the subject (same token count), run the second, and copy its hidden states at the subject
tokens, after block ``L``, into a run of the first. If the first prompt's answer becomes the
second prompt's answer, the fact flowed through the subject position at layer ``L``.
"""

from __future__ import annotations

import pandas as pd
import torch

from langedit_mini.model.architecture import Architecture, detect_architecture, get_module, num_layers
from langedit_mini.model.keys import layer_output
from langedit_mini.model.tokens import evaluation_mode, model_device


def greedy_answer(model, input_ids: torch.Tensor, tokens: int) -> list[int]:
    """Greedy continuation of one prompt (no cache, so hooks see every position at every step)."""
    ids = input_ids
    for _ in range(tokens):
        next_token = model(input_ids=ids).logits[0, -1].argmax()
        ids = torch.cat([ids, next_token.view(1, 1)], dim=1)
    return ids[0, input_ids.shape[1] :].tolist()


def patch_subject(
    model, tokenizer, prompt: str, donor: str, layer: int, architecture: Architecture, answer_tokens: int = 3
) -> dict | None:
    """Answers of ``prompt``, of ``donor``, and of ``prompt`` with the donor's subject states at ``layer``.

    Returns None when the two prompts do not tokenize to the same length (no position alignment).
    """
    device = model_device(model)
    ids = tokenizer([prompt], return_tensors="pt")["input_ids"].to(device)
    donor_ids = tokenizer([donor], return_tensors="pt")["input_ids"].to(device)
    if ids.shape != donor_ids.shape:
        return None
    differing = (ids[0] != donor_ids[0]).nonzero().flatten().tolist()
    block = get_module(model, architecture.layer.format(layer=layer))
    stored = {}
    with evaluation_mode(model):
        handle = block.register_forward_hook(lambda m, i, out: stored.__setitem__("h", layer_output(out).clone()))
        try:
            model(input_ids=donor_ids)
        finally:
            handle.remove()

        def replace(module, inputs, output):
            states = layer_output(output).clone()
            states[:, differing] = stored["h"][:, differing]
            return (states,) + tuple(output[1:]) if isinstance(output, tuple) else states

        original = greedy_answer(model, ids, answer_tokens)
        donor_answer = greedy_answer(model, donor_ids, answer_tokens)
        handle = block.register_forward_hook(replace)
        try:
            patched = greedy_answer(model, ids, answer_tokens)
        finally:
            handle.remove()
    return {
        "original": tokenizer.decode(original),
        "donor": tokenizer.decode(donor_answer),
        "patched": tokenizer.decode(patched),
        "follows_donor": patched == donor_answer and original != donor_answer,
    }


def subject_patching_table(
    model,
    tokenizer,
    pairs: list[tuple[str, str, str]],
    *,
    layers=None,
    architecture: Architecture | None = None,
    answer_tokens: int = 3,
) -> pd.DataFrame:
    """For (language, prompt, donor) pairs and each layer: does the patched answer follow the donor?"""
    architecture = architecture or detect_architecture(model)
    layers = range(num_layers(model, architecture)) if layers is None else layers
    rows = []
    for language, prompt, donor in pairs:
        for layer in layers:
            result = patch_subject(model, tokenizer, prompt, donor, layer, architecture, answer_tokens)
            if result is not None:
                rows.append({"lang": language, "layer": layer, "prompt": prompt, "donor": donor, **result})
    return pd.DataFrame(rows)
