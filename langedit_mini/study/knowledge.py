"""What a real LLM knows, per language, and how it is best asked: the measurement behind the prompt format of
each model, made once, before any tuning, and then used for every method alike.

Two sources of questions with true answers, in the six languages:

* ``mzsre nq``: MzsRE's locality questions (Natural Questions, translated) and their answers: the true-answer
  questions MzsRE itself carries (its edit facts have no true answer, only the counterfactual target);
* ``pocket facts``: the pocket world's real facts (capitals, currencies, continents, calling codes, official
  languages, cities' countries, built from CLDR and other data packages), asked without their markers.

Each item is scored in each prompt format (``data.prompts``: ``raw``, ``qa``, ``few-shot``, and ``chat`` where
the model has a chat template; the few-shot form's two example facts are left out of the items) by
teacher-forced token accuracy and greedy exact match (``evaluation.scoring.score``).
``choose_format`` picks the format with the highest mean exact match over sources and languages (the reference's
``raw`` on a tie). ``measure`` runs it all for a testbed and writes ``results/knowledge/<model>/`` (the items'
scores, the table, the choice, the provenance).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pandas as pd

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.data.prompts import FEW_SHOT_FACTS, PROMPT_FORMATS, bare_question, format_text
from langedit_mini.evaluation.scoring import score
from langedit_mini.study import store

SOURCES = ("mzsre nq", "pocket facts")


def knowledge_items(mzsre_requests, pocket_requests, per_language: int, seed: int = 0) -> pd.DataFrame:
    """Up to ``per_language`` questions per source and language, drawn with ``seed``: columns source, lang,
    question (bare), answer, joiner."""
    rows = []
    for source, requests in (("mzsre nq", mzsre_requests), ("pocket facts", pocket_requests)):
        for language in LANGUAGES:
            pool = []
            for request in requests:
                if request.lang != language:
                    continue
                if source == "mzsre nq" and request.locality_prompt and request.locality_answer:
                    pool.append((bare_question(request.locality_prompt), request.locality_answer))
                elif source == "pocket facts" and request.true_answers and request.fact_id not in FEW_SHOT_FACTS:
                    pool.append((bare_question(request.question), request.true_answers[0]))
            pool = sorted(set(pool))
            joiner = " " if language != "zh" else ""
            for question, answer in random.Random(seed).sample(pool, min(per_language, len(pool))):
                rows.append(
                    {"source": source, "lang": language, "question": question, "answer": answer} | {"joiner": joiner}
                )
    return pd.DataFrame(rows)


def formats_of(tokenizer) -> list[str]:
    """The prompt formats a model can be asked in: ``chat`` only with a chat template."""
    return [form for form in PROMPT_FORMATS if form != "chat" or getattr(tokenizer, "chat_template", None)]


def score_items(model, tokenizer, items: pd.DataFrame, forms) -> pd.DataFrame:
    """``items`` scored in each of ``forms``: one row per item and form, with teacher_forced and exact_match."""
    frames = []
    for form in forms:
        prompts = [format_text(q, form, tokenizer, language) for q, language in zip(items.question, items.lang)]
        joiners = ["" if form == "chat" else joiner for joiner in items.joiner]
        scores = score(model, tokenizer, prompts, list(items.answer), joiners, predictions=False)
        frames.append(items.assign(form=form, teacher_forced=scores.teacher_forced, exact_match=scores.exact_match))
    return pd.concat(frames, ignore_index=True)


def knowledge_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Per source, language and form: mean teacher-forced accuracy and exact match, and the items."""
    table = scored.groupby(["source", "lang", "form"]).agg(
        teacher_forced=("teacher_forced", "mean"), exact_match=("exact_match", "mean"), items=("answer", "size")
    )
    return table.reset_index()


def choose_format(scored: pd.DataFrame) -> str:
    """The format with the highest mean exact match over sources and languages (each weighing the same);
    ``raw``, the reference's practice, on a tie."""
    means = knowledge_table(scored).groupby("form").exact_match.mean()
    best = means.max()
    return "raw" if means.get("raw") == best else str(means.idxmax())


def measure(testbed, output, *, per_language: int = 100, seed: int = 0, log=print) -> dict:
    """The knowledge of ``testbed``'s model in every format it can be asked in, written under ``output`` with
    the format chosen and the provenance; returns the record."""
    from langedit_mini.data.datasets import load_pocket
    from langedit_mini.study.provenance import finish_record, start_record

    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    pocket, _ = load_pocket()
    mzsre = testbed.requests if testbed.dataset == "mzsre" else []
    items = knowledge_items(mzsre, pocket, per_language, seed)
    start = time.perf_counter()
    scored = score_items(testbed.model, testbed.tokenizer, items, formats_of(testbed.tokenizer))
    chosen = choose_format(scored)
    table = knowledge_table(scored)
    info = (
        {
            "model": testbed.name,
            "per_language": per_language,
            "seed": seed,
            "forms": formats_of(testbed.tokenizer),
            "chosen": chosen,
            "rule": "the highest mean greedy exact match over sources and languages; raw on a tie",
            "seconds": round(time.perf_counter() - start, 1),
        }
        | testbed.record()
        | finish_record(record)
    )
    store.write_table(Path(output) / "items.csv", scored)
    store.write_table(Path(output) / "knowledge.csv", table)
    store.write_json(Path(output) / "knowledge.json", info)
    log(table.pivot_table(index=["source", "lang"], columns="form", values="exact_match").round(3).to_string())
    log(f"{testbed.name}: asked {chosen} (written to {output})")
    return info
