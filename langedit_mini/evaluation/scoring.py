"""Scoring a causal LM on (prompt, answer) pairs: teacher-forced token accuracy and greedy exact match.

* Teacher-forced token accuracy: the fraction of answer tokens that are the argmax given the
  prompt and the previous answer tokens (the field's usual metric).
* Greedy exact match: the greedy continuation of the prompt starts with the whole answer
  (stricter; teacher forcing is known to overstate editing success). It needs no decoding: while
  the continuation agrees with the answer, greedy decoding's next token is the argmax after the
  prompt and the answer so far, which is the teacher-forced prediction at that position. So the
  greedy continuation is the answer exactly when every teacher-forced prediction is right, and one
  forward pass gives both metrics. Decoding runs only where the predicted text is asked for.
* Prompts that begin alike (the few-shot form's examples) are scored in groups whose shared tokens run once
  (``scoring_groups``, ``SHARED_PREFIX_MIN``): in a sequential study, where every edit so far is scored after each
  batch, the scoring is most of a run's time on a real LLM. The grouped and the plain pass agree to float rounding.

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

#: Prompts that share at least this many leading tokens (a few-shot form's examples, the same in every question of a
#: language) are scored in groups whose shared tokens run once, their attention keys and values reused by every
#: prompt of the group (``scoring_groups``). Where no group reaches it (raw questions, the pocket world) every
#: prompt runs whole, in the order and chunks given, as before the groups existed.
SHARED_PREFIX_MIN = 16


def _common_length(first, second) -> int:
    """How many leading tokens two token id lists share."""
    length = 0
    for a, b in zip(first, second):
        if a != b:
            break
        length += 1
    return length


def scoring_groups(prompt_ids, batch_size: int) -> list[tuple[list[int], int]]:
    """The passes that score ``prompt_ids``: (item indices, shared prefix length) each, every item in one.

    The prompts sorted by their tokens are cut into groups of at most ``batch_size`` that share at least
    ``SHARED_PREFIX_MIN`` leading tokens; a group's shared prefix stops one token before its shortest prompt ends,
    so that each prompt keeps the position that predicts its first answer token. The items in no such group (a
    prompt alone with its prefix) are chunked by ``batch_size`` in their given order, with prefix 0: when no group
    forms at all the passes are exactly the plain chunks ``[0, batch_size)``, ``[batch_size, 2 batch_size)``..."""
    order = sorted(range(len(prompt_ids)), key=prompt_ids.__getitem__)
    runs, current, shared = [], [], 0
    for index in order:
        if current and len(current) < batch_size:
            common = min(shared, _common_length(prompt_ids[current[0]], prompt_ids[index]))
            if common >= SHARED_PREFIX_MIN:
                current.append(index)
                shared = common
                continue
        if current:
            runs.append((current, shared))
        current, shared = [index], len(prompt_ids[index])
    if current:
        runs.append((current, shared))
    groups = []
    for members, common in runs:
        common = min(common, min(len(prompt_ids[i]) for i in members) - 1)
        if len(members) > 1 and common >= SHARED_PREFIX_MIN:
            groups.append((sorted(members), common))
    grouped = {index for members, _ in groups for index in members}
    rest = [index for index in range(len(prompt_ids)) if index not in grouped]
    return groups + [(rest[start : start + batch_size], 0) for start in range(0, len(rest), batch_size)]


def _reuses_prefix(model) -> bool:
    """Whether the model's architecture runs from a cached prefix (``Architecture.prefix_cache``, tested per entry)."""
    from langedit_mini.model.architecture import UnknownArchitectureError

    try:
        return detect_architecture(model).prefix_cache
    except UnknownArchitectureError:
        return False


def _after_shared_prefix(model, prefix: list[int], ids: torch.Tensor, mask: torch.Tensor) -> dict:
    """The inputs that run the rows ``ids`` (right padded, ``mask``) after the token ids ``prefix``, which every row
    shares: the prefix runs once, its keys and values serve every row from the model's cache."""
    from transformers import DynamicCache

    device, rows, width = ids.device, ids.shape[0], len(prefix)
    output = model.base_model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
    cache = DynamicCache(
        ddp_cache_data=[(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v, *_ in output.cache],
        config=model.config,
    )
    return dict(
        input_ids=ids,
        attention_mask=torch.cat([torch.ones(rows, width, dtype=mask.dtype, device=device), mask], dim=1),
        position_ids=(width + torch.arange(ids.shape[1], device=device)).expand(rows, -1),
        cache=cache,
        use_cache=True,
    )


def answer_logits(model, prompt_ids, answer_ids, pad_id: int, shared: int = 0) -> torch.Tensor:
    """Logits (sum of answer lengths, vocabulary) at the positions that predict each answer token, item after item,
    teacher-forced. ``shared``: the number of leading prompt tokens every item shares, run once (``scoring_groups``);
    0 runs every token of every item."""
    sequences = [p[shared:] + a[:-1] for p, a in zip(prompt_ids, answer_ids)]
    ids, mask = pad_rows(sequences, pad_id, left=False, device=model_device(model))
    inputs = _after_shared_prefix(model, prompt_ids[0][:shared], ids, mask) if shared else {}
    inputs = inputs or dict(input_ids=ids, attention_mask=mask)
    rows, positions = [], []
    for row, (prompt, answer) in enumerate(zip(prompt_ids, answer_ids)):
        rows += [row] * len(answer)
        positions += range(len(prompt) - 1 - shared, len(prompt) - 1 - shared + len(answer))
    rows, positions = torch.tensor(rows, device=ids.device), torch.tensor(positions, device=ids.device)
    if ids.numel() * model.get_output_embeddings().weight.shape[0] > LOGITS_BUDGET:
        return selected_logits(model, detect_architecture(model), rows, positions, **inputs)
    return model(**inputs).logits[rows, positions]


def _teacher_forced_hits(model, prompt_ids, answer_ids, pad_id: int, shared: int = 0) -> list[list[bool]]:
    """Per item and answer token: is it the argmax given the prompt and the earlier answer tokens."""
    logits = answer_logits(model, prompt_ids, answer_ids, pad_id, shared)
    right = (logits.argmax(dim=-1) == torch.tensor([t for a in answer_ids for t in a], device=logits.device)).tolist()
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
    teacher, exact = [None] * len(prompt_ids), [None] * len(prompt_ids)
    groups = (
        scoring_groups(prompt_ids, batch_size)
        if _reuses_prefix(model)
        else [(list(range(s, min(s + batch_size, len(prompt_ids)))), 0) for s in range(0, len(prompt_ids), batch_size)]
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(prompt_ids), desc=f"evaluation, {len(prompt_ids)} items", leave=False)
    with evaluation_mode(model):
        for members, shared in groups:
            prompts, answers = [prompt_ids[i] for i in members], [answer_ids[i] for i in members]
            for index, hits in zip(members, _teacher_forced_hits(model, prompts, answers, pad_id, shared)):
                teacher[index] = sum(hits) / len(hits)
                exact[index] = all(hits)
            if bar is not None:
                bar.update(len(members))
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
