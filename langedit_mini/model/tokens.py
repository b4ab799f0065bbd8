"""Token rows for a causal LM: encoding (prompt, answer) pairs, padding, and the model's mode and device.

The answer is tokenized on its own (``joiner + answer``, no BOS) and appended to the prompt's
tokens, as ROME/MEMIT do, so the answer tokens are the same whatever the prompt.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def evaluation_mode(model):
    """``model.eval()`` and ``torch.no_grad()`` for the block; the previous mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def encode_pairs(tokenizer, prompts: list[str], answers: list[str], joiners: list[str]):
    """Token ids of each prompt (with BOS) and of each answer (without), as lists."""
    if not (len(prompts) == len(answers) == len(joiners)):
        raise ValueError(
            f"prompts, answers and joiners must have the same length, got "
            f"{len(prompts)}, {len(answers)}, {len(joiners)}"
        )
    prompt_ids = tokenizer(list(prompts))["input_ids"]
    answer_ids = tokenizer([j + a for j, a in zip(joiners, answers)], add_special_tokens=False)["input_ids"]
    for answer, ids in zip(answers, answer_ids):
        if not ids:
            raise ValueError(f"answer {answer!r} tokenizes to nothing")
    return prompt_ids, answer_ids


def pad_token_id(tokenizer) -> int:
    """The tokenizer's padding id, or its end-of-sequence id when it has none (GPT-2, Llama)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def pad_rows(sequences: list[list[int]], pad_id: int, left: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists padded to one width (on the left or the right): ``(ids, attention_mask)``, (B, T)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if left:
            ids[row, width - len(sequence) :] = torch.tensor(sequence)
            mask[row, width - len(sequence) :] = 1
        else:
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
    return ids.to(device), mask.to(device)
