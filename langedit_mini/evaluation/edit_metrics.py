"""Editing metrics (reference, section 6) as tidy pandas DataFrames; evaluation never changes the model.

For each request and each metric, teacher-forced token accuracy and greedy exact match:

* reliability: the edit prompt, scored against the new target;
* generality: the paraphrase, against the new target;
* locality: the unrelated question, against the *unedited* model's own greedy answer
  (``locality_reference``: its token ids, compared as ids, so a tokenizer whose decoded text does
  not re-encode to the same ids cannot make the unedited model disagree with itself), and
  secondarily (``locality (gold)``) against its gold answer;
* portability: the question that needs the new fact, against its answer, where the record has one.

``cross_lingual`` scores edits made in one language on the same facts' prompts in every language.
"""

from __future__ import annotations

import pandas as pd

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.languages import LANGUAGES, check_languages
from langedit_mini.evaluation.scoring import check_lengths, greedy_continuations, score, score_token_ids
from langedit_mini.model.architecture import check_model_and_tokenizer
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, pad_token_id


def locality_reference(
    model, tokenizer, requests: list[EditRequest], batch_size: int = 128
) -> list[tuple[int, ...] | None]:
    """The model's own greedy answers to the locality prompts, as token ids (as many tokens as the gold
    answer); None for a request without a locality prompt. ``evaluate_requests`` compares an edited
    model's predictions with these ids directly: the unedited model scores exactly 1.0 against them."""
    check_model_and_tokenizer(model, tokenizer)
    usable = [r for r in requests if r.locality_prompt and r.locality_answer]
    if not usable:
        return [None] * len(requests)
    prompts = [r.locality_prompt for r in usable]
    prompt_ids, answer_ids = encode_pairs(
        tokenizer, prompts, [r.locality_answer for r in usable], [r.joiner for r in usable]
    )
    check_lengths(model, prompt_ids, answer_ids, [f"locality prompt {r.locality_prompt[:50]!r}" for r in usable])
    pad = pad_token_id(tokenizer)
    predictions = []
    with evaluation_mode(model):
        for start in range(0, len(prompt_ids), batch_size):
            part = slice(start, start + batch_size)
            continuations = greedy_continuations(model, prompt_ids[part], [len(a) for a in answer_ids[part]], pad)
            predictions += [tuple(c) for c in continuations]
    iterator = iter(predictions)
    return [next(iterator) if (r.locality_prompt and r.locality_answer) else None for r in requests]


def _reference_ids(entry, index: int) -> list[int]:
    if isinstance(entry, str) or not all(isinstance(t, int) for t in entry):
        raise TypeError(
            f"reference[{index}] must be token ids (what locality_reference returns), got {type(entry).__name__} "
            f"{entry!r:.60}: decoded text does not always re-encode to the ids the model predicted"
        )
    return list(entry)


def evaluate_requests(
    model,
    tokenizer,
    requests: list[EditRequest],
    reference: list[tuple[int, ...] | None] | None = None,
    batch_size: int = 128,
    *,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per (request, metric): request (its index in ``requests``), fact_id, lang, relation, metric,
    teacher_forced, exact_match.

    ``reference``: per request, the unedited model's locality answer as token ids
    (``locality_reference``); without it only ``locality (gold)`` is scored. ``progress``: a progress bar.
    """
    check_model_and_tokenizer(model, tokenizer)
    if reference is not None and len(reference) != len(requests):
        raise ValueError(f"reference has {len(reference)} entries for {len(requests)} requests")
    items = []  # (request index, metric, prompt, answer text or answer ids)
    for index, request in enumerate(requests):
        items.append((index, "reliability", request.question, request.target))
        if request.paraphrase:
            items.append((index, "generality", request.paraphrase, request.target))
        if request.locality_prompt and request.locality_answer:
            if reference is not None and reference[index]:
                items.append((index, "locality", request.locality_prompt, _reference_ids(reference[index], index)))
            items.append((index, "locality (gold)", request.locality_prompt, request.locality_answer))
        if request.portability_prompt and request.portability_answer:
            items.append((index, "portability", request.portability_prompt, request.portability_answer))
    texts = [i for i, item in enumerate(items) if isinstance(item[3], str)]
    prompt_ids, answer_ids = [None] * len(items), [None] * len(items)
    if texts:
        encoded = encode_pairs(
            tokenizer,
            [items[i][2] for i in texts],
            [items[i][3] for i in texts],
            [requests[items[i][0]].joiner for i in texts],
        )
        for i, prompt, answer in zip(texts, *encoded):
            prompt_ids[i], answer_ids[i] = prompt, answer
    given = [i for i, item in enumerate(items) if not isinstance(item[3], str)]
    if given:
        for i, prompt in zip(given, tokenizer([items[i][2] for i in given])["input_ids"]):
            prompt_ids[i], answer_ids[i] = prompt, items[i][3]
    labels = [f"request {requests[i].fact_id or i}, {metric} ({prompt[:50]!r})" for i, metric, prompt, _ in items]
    check_lengths(model, prompt_ids, answer_ids, labels)
    teacher, exact = (
        score_token_ids(model, prompt_ids, answer_ids, pad_token_id(tokenizer), batch_size, progress=progress)
        if items
        else ([], [])
    )
    return pd.DataFrame(
        [
            {
                "request": index,
                "fact_id": requests[index].fact_id,
                "lang": requests[index].lang,
                "relation": requests[index].relation,
                "metric": metric,
                "teacher_forced": tf,
                "exact_match": em,
            }
            for (index, metric, _, _), tf, em in zip(items, teacher, exact)
        ]
    )


def cross_lingual(
    model, tokenizer, edited: list[EditRequest], pool: list[EditRequest], languages=None, batch_size: int = 128
) -> pd.DataFrame:
    """Edits made in language A, scored on the same facts' edit prompts in every language B (B's own target).

    ``pool``: requests in every language (e.g. the whole dataset), matched to the edits by ``fact_id``.
    One row per (edit, language B): ``edited in``, ``scored in``, fact_id, teacher_forced, exact_match.
    An edit whose fact is missing in some language B is counted in the ``missing`` attribute of the result.
    """
    languages = check_languages(languages)
    by_fact = {(r.fact_id, r.lang): r for r in pool}
    items, missing = [], 0
    for request in edited:
        for language in languages:
            other = by_fact.get((request.fact_id, language))
            if other is None:
                missing += 1
                continue
            items.append((request, language, other))
    scores = score(
        model,
        tokenizer,
        [o.question for _, _, o in items],
        [o.target for _, _, o in items],
        [o.joiner for _, _, o in items],
        batch_size=batch_size,
        predictions=False,
    )
    frame = pd.DataFrame(
        [
            {
                "edited in": request.lang,
                "scored in": language,
                "fact_id": request.fact_id,
                "teacher_forced": tf,
                "exact_match": em,
            }
            for (request, language, _), tf, em in zip(items, scores.teacher_forced, scores.exact_match)
        ]
    )
    frame.attrs["missing"] = missing
    return frame


def cross_lingual_matrix(frame: pd.DataFrame, value: str = "teacher_forced", languages=None) -> pd.DataFrame:
    """The languages x languages matrix (rows: edited in, columns: scored in) of mean ``value``."""
    languages = list(languages or LANGUAGES)
    matrix = frame.pivot_table(index="edited in", columns="scored in", values=value, aggfunc="mean")
    return matrix.reindex(
        index=[lang for lang in languages if lang in matrix.index],
        columns=[lang for lang in languages if lang in matrix.columns],
    )
