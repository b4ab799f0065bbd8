"""Scoring a causal LM on (prompt, answer) pairs: teacher-forced token accuracy and greedy exact match.

* Teacher-forced token accuracy: the fraction of answer tokens that are the argmax given the
  prompt and the previous answer tokens (the field's usual metric).
* Greedy exact match: the greedy continuation of the prompt starts with the whole answer
  (stricter; teacher forcing is known to overstate editing success). It needs no decoding: while
  the continuation agrees with the answer, greedy decoding's next token is the argmax after the
  prompt and the answer so far, which is the teacher-forced prediction at that position. So the
  greedy continuation is the answer exactly when every teacher-forced prediction is right, and one
  forward pass gives both metrics. Decoding runs only where the predicted text is asked for.

The answer is tokenized on its own (``joiner + answer``, no BOS) and appended to the prompt's
tokens, as ROME/MEMIT do, so the answer tokens are the same whatever the prompt.
Scoring never changes the model: no gradients, and its train/eval mode is restored on return.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from langedit_mini.model.architecture import check_model_and_tokenizer, detect_architecture, selected_logits
from langedit_mini.model.keys import context_limit
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, model_device, pad_rows, pad_token_id


@dataclass
class Scores:
    teacher_forced: list[float]  # per item, in [0, 1]
    exact_match: list[bool]  # per item
    predictions: list[str]  # per item: the greedy continuation (as many tokens as the answer), when asked


def check_lengths(model, prompt_ids, answer_ids, labels) -> None:
    """Refuse an item whose prompt and answer are longer than the model's context, naming it (``labels[i]``:
    what item i is), instead of a library warning and scores from positions the model never learnt."""
    limit = context_limit(model)
    if limit is None:
        return
    for index, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        if len(prompt) + len(answer) > limit:
            raise ValueError(
                f"{labels[index]}: the prompt ({len(prompt)} tokens) and the answer ({len(answer)}) are longer "
                f"than the model's context ({limit} tokens); shorten them or drop the item"
            )


#: The most logits (rows x positions x vocabulary) a scoring pass computes at every position: 1 GiB in float32.
#: Above it (a 262,144-token vocabulary), only the positions that predict an answer token get logits.
LOGITS_BUDGET = 2**28


def _teacher_forced_hits(model, prompt_ids, answer_ids, pad_id: int) -> list[list[bool]]:
    """Per item and answer token: is it the argmax given the prompt and the earlier answer tokens."""
    sequences = [p + a[:-1] for p, a in zip(prompt_ids, answer_ids)]
    ids, mask = pad_rows(sequences, pad_id, left=False, device=model_device(model))
    if ids.numel() * model.get_output_embeddings().weight.shape[0] > LOGITS_BUDGET:
        return _teacher_forced_hits_selected(model, prompt_ids, answer_ids, ids, mask)
    logits = model(input_ids=ids, attention_mask=mask).logits  # (B, T, V)
    hits = []
    for row, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        positions = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(answer), device=logits.device)
        predicted = logits[row, positions].argmax(dim=-1)
        hits.append((predicted == torch.tensor(answer, device=logits.device)).tolist())
    return hits


def _teacher_forced_hits_selected(model, prompt_ids, answer_ids, ids, mask) -> list[list[bool]]:
    """``_teacher_forced_hits`` with logits at the answer-predicting positions only (``selected_logits``)."""
    rows, positions, answers = [], [], []
    for row, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        rows += [row] * len(answer)
        positions += range(len(prompt) - 1, len(prompt) - 1 + len(answer))
        answers += answer
    device = ids.device
    logits = selected_logits(
        model,
        detect_architecture(model),
        torch.tensor(rows, device=device),
        torch.tensor(positions, device=device),
        input_ids=ids,
        attention_mask=mask,
    )
    right = (logits.argmax(dim=-1) == torch.tensor(answers, device=device)).tolist()
    hits, start = [], 0
    for answer in answer_ids:
        hits.append(right[start : start + len(answer)])
        start += len(answer)
    return hits


def answer_log_likelihoods(model, prompt_ids, answer_ids, pad_id: int, batch_size: int = 64) -> list[float]:
    """Per item: the summed log-probability of the answer's tokens after its prompt (token id lists).
    Used by the probes and few-shot tasks that compare answers by likelihood; no gradients."""
    scores = []
    device = model_device(model)
    with evaluation_mode(model):
        for start in range(0, len(prompt_ids), batch_size):
            prompts, answers = prompt_ids[start : start + batch_size], answer_ids[start : start + batch_size]
            ids, mask = pad_rows([p + a for p, a in zip(prompts, answers)], pad_id, left=False, device=device)
            log_probs = model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(dim=-1)
            for row, (prompt, answer) in enumerate(zip(prompts, answers)):
                positions = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(answer), device=device)
                scores.append(float(log_probs[row, positions, torch.tensor(answer, device=device)].sum()))
    return scores


def greedy_continuations(model, prompt_ids, lengths: list[int], pad_id: int) -> list[list[int]]:
    """Greedy decoding of ``lengths[i]`` tokens after each prompt (left-padded batch).

    The prompt runs once; each later step feeds only the new token, with the attention keys and
    values of everything before it from the model's cache (explicit positions, so left padding
    does not shift them). A model that returns no cache is run on the whole sequence at every step.
    """
    ids, mask = pad_rows(prompt_ids, pad_id, left=True, device=model_device(model))
    generated = [[] for _ in prompt_ids]
    positions = (mask.cumsum(dim=1) - 1).clamp_min(0)
    cache, step_ids, step_positions = None, ids, positions
    for _ in range(max(lengths)):
        output = model(
            input_ids=step_ids, attention_mask=mask, position_ids=step_positions, cache=cache, use_cache=True
        )
        next_tokens = output.logits[:, -1].argmax(dim=-1)  # (B,)
        for row, token in enumerate(next_tokens.tolist()):
            generated[row].append(token)
        cache = getattr(output, "cache", None)
        ids = torch.cat([ids, next_tokens[:, None]], dim=1)
        mask = torch.cat([mask, torch.ones_like(next_tokens)[:, None]], dim=1)
        positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
        if cache is None:
            step_ids, step_positions = ids, positions
        else:
            step_ids, step_positions = next_tokens[:, None], positions[:, -1:]
    return [g[:n] for g, n in zip(generated, lengths)]


def score_token_ids(
    model, prompt_ids, answer_ids, pad_id: int, batch_size: int = 64, *, progress: bool = False
) -> tuple[list[float], list[bool]]:
    """Teacher-forced accuracy and greedy exact match of answers given as token ids (no text round trip).
    ``progress``: a progress bar over the items."""
    teacher, exact = [], []
    starts = range(0, len(prompt_ids), batch_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompt_ids), desc=f"evaluation, {len(prompt_ids)} items", leave=False)
    with evaluation_mode(model):
        for start in starts:
            part = slice(start, start + batch_size)
            for hits in _teacher_forced_hits(model, prompt_ids[part], answer_ids[part], pad_id):
                teacher.append(sum(hits) / len(hits))
                exact.append(all(hits))
            if bar is not None:
                bar.update(len(prompt_ids[part]))
    if bar is not None:
        bar.close()
    return teacher, exact


def score(
    model,
    tokenizer,
    prompts: list[str],
    answers: list[str],
    joiners: list[str] | str = " ",
    *,
    batch_size: int = 64,
    predictions: bool = True,
) -> Scores:
    """Teacher-forced accuracy and greedy exact match for every pair, and (``predictions``) the greedy
    continuation's text (decoding as many tokens as the answer; ``predictions=False`` skips it and
    leaves ``Scores.predictions`` empty)."""
    check_model_and_tokenizer(model, tokenizer)
    if isinstance(joiners, str):
        joiners = [joiners] * len(prompts)
    prompt_ids, answer_ids = encode_pairs(tokenizer, prompts, answers, joiners)
    check_lengths(model, prompt_ids, answer_ids, [f"item {i} ({p[:50]!r})" for i, p in enumerate(prompts)])
    pad_id = pad_token_id(tokenizer)
    teacher, exact = score_token_ids(model, prompt_ids, answer_ids, pad_id, batch_size)
    texts = []
    if predictions:
        with evaluation_mode(model):
            for start in range(0, len(prompt_ids), batch_size):
                prompts_batch = prompt_ids[start : start + batch_size]
                lengths = [len(a) for a in answer_ids[start : start + batch_size]]
                texts += [tokenizer.decode(c) for c in greedy_continuations(model, prompts_batch, lengths, pad_id)]
    return Scores(teacher, exact, texts)
