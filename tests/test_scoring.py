"""Greedy decoding with the model's cache gives the tokens of decoding the whole sequence at every step."""

import pytest
import torch
from test_stats import CONFIGS, tiny_model

from langedit_mini.evaluation.scoring import greedy_continuations
from langedit_mini.model.tokens import evaluation_mode, pad_rows

PROMPTS = ["Q: What is the capital of the country Chile? A:", "问：日本的首都是什么？答：", "Die Stadt"]


def uncached_greedy(model, prompt_ids, steps, pad_id):
    """The plain recipe: the whole left-padded sequence through the model for every new token."""
    ids, mask = pad_rows(prompt_ids, pad_id, left=True, device="cpu")
    out = [[] for _ in prompt_ids]
    for _ in range(steps):
        positions = (mask.cumsum(dim=1) - 1).clamp_min(0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits[:, -1]
        tokens = logits.argmax(-1)
        for row, token in enumerate(tokens.tolist()):
            out[row].append(token)
        ids = torch.cat([ids, tokens[:, None]], 1)
        mask = torch.cat([mask, torch.ones_like(tokens)[:, None]], 1)
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cached_greedy_decoding_equals_decoding_the_whole_sequence(name, tokenizer):
    model = tiny_model(name, tokenizer)
    prompt_ids = tokenizer(PROMPTS)["input_ids"]
    assert len({len(p) for p in prompt_ids}) == 3  # left padding differs row by row
    with evaluation_mode(model):
        cached = greedy_continuations(model, prompt_ids, [6, 3, 6], 0)
        plain = uncached_greedy(model, prompt_ids, 6, 0)
    assert cached == [plain[0], plain[1][:3], plain[2]]


def test_cached_greedy_decoding_on_the_pocket_model(pocket_model):
    model, tokenizer = pocket_model
    prompt_ids = tokenizer(PROMPTS)["input_ids"]
    with evaluation_mode(model):
        cached = greedy_continuations(model, prompt_ids, [8, 8, 8], tokenizer.pad_token_id)
        plain = uncached_greedy(model, prompt_ids, 8, tokenizer.pad_token_id)
    assert cached == plain
    assert len({tuple(c) for c in cached}) == 3  # three different answers, so the comparison means something
