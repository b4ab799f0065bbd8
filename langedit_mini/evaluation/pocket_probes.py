"""What the pocket model knows: facts by question form, and the general-ability probes.

Question forms (see ``templates.py``): ``edit prompt`` (trained), ``second form`` (trained),
``paraphrase`` (trained for ``keep`` facts only; never for ``edit`` facts) and ``held-out form``
(never trained). Probes, per language, the pocket counterpart of the paper's downstream tasks:

* ``fact_qa``: unrelated-fact QA on facts that are never edited;
* ``perplexity``: on held-out statements (a statement form never trained);
* ``translation``: country names between English and the other languages;
* ``verification``: yes/no fact checking, scored by which answer word (true/false in the
  language) gets the higher probability; on facts whose verification was trained (retention) and,
  reported apart, on held-out facts (generalisation, near chance for a model this small).
"""

from __future__ import annotations

import math

import pandas as pd
import torch

from langedit_mini.data.languages import ANSWER_JOINER, LANGUAGES, check_languages
from langedit_mini.evaluation.scoring import answer_log_likelihoods, score
from langedit_mini.model.tokens import encode_pairs, evaluation_mode, model_device, pad_token_id
from langedit_mini.pocket.templates import render, templates

FORMS = ("edit prompt", "second form", "paraphrase", "held-out form")


def fact_table(facts: list[dict], languages=LANGUAGES, forms=FORMS, limit: int | None = None) -> pd.DataFrame:
    """One row per (fact, language, form) with the prompt and the true answer."""
    rows = []
    for fact in facts[:limit]:
        for language in languages:
            questions = templates(fact["relation"], language)["questions"]
            for form in forms:
                rows.append(
                    {
                        "fact_id": fact["fact_id"],
                        "relation": fact["relation"],
                        "split": fact["split"],
                        "lang": language,
                        "form": form,
                        "prompt": render(questions[FORMS.index(form)], fact["subject"][language]),
                        "answer": fact["answer"][language],
                        "joiner": ANSWER_JOINER[language],
                    }
                )
    return pd.DataFrame(rows)


def score_table(model, tokenizer, table: pd.DataFrame, batch_size: int = 128) -> pd.DataFrame:
    """Add ``teacher_forced``, ``exact_match`` and ``prediction`` columns to a prompt/answer table."""
    scores = score(
        model,
        tokenizer,
        table["prompt"].tolist(),
        table["answer"].tolist(),
        table["joiner"].tolist(),
        batch_size=batch_size,
    )
    return table.assign(
        teacher_forced=scores.teacher_forced, exact_match=scores.exact_match, prediction=scores.predictions
    )


def perplexity(model, tokenizer, texts: list[str], batch_size: int = 128) -> float:
    """exp(mean negative log-likelihood per predicted token) over ``texts`` (BOS not scored)."""
    total_nll, total_tokens = 0.0, 0
    with evaluation_mode(model):
        for start in range(0, len(texts), batch_size):
            encoded = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True)
            ids = encoded["input_ids"].to(model_device(model))
            mask = encoded["attention_mask"].to(ids.device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            nll = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total_nll += float(nll)
            total_tokens += int((targets != -100).sum())
    return math.exp(total_nll / total_tokens)


def choice_accuracy(model, tokenizer, items: list[dict], batch_size: int = 128) -> list[bool]:
    """For each item, is the log-probability of its ``answer`` the highest among its ``choices``?"""
    results = []
    for item in items:
        if item["answer"] not in item["choices"]:
            raise ValueError(f"item answer {item['answer']!r} is not among its choices {item['choices']}")
    prompts = [item["prompt"] for item in items for _ in item["choices"]]
    answers = [choice for item in items for choice in item["choices"]]
    joiners = [item["joiner"] for item in items for _ in item["choices"]]
    log_probs = answer_log_probs(model, tokenizer, prompts, answers, joiners, batch_size)
    position = 0
    for item in items:
        values = log_probs[position : position + len(item["choices"])]
        position += len(item["choices"])
        results.append(item["choices"][max(range(len(values)), key=values.__getitem__)] == item["answer"])
    return results


def answer_log_probs(model, tokenizer, prompts, answers, joiners, batch_size: int = 128) -> list[float]:
    """Sum of log-probabilities of each answer's tokens after its prompt."""
    prompt_ids, answer_ids = encode_pairs(tokenizer, prompts, answers, joiners)
    return answer_log_likelihoods(model, prompt_ids, answer_ids, pad_token_id(tokenizer), batch_size)


def general_ability(
    model, tokenizer, probes: dict, languages=LANGUAGES, limit_per_language: int | None = None, batch_size: int = 128
) -> pd.DataFrame:
    """The four probes per language: a tidy DataFrame (lang, probe, metric, value, n)."""
    rows = []
    for language in check_languages(languages):

        def pick(name, language=language):
            items = [item for item in probes[name] if item["lang"] == language]
            return items[:limit_per_language]

        def exact_match(name, label, language=language):
            items = pick(name)
            scores = score(
                model,
                tokenizer,
                [i["prompt"] for i in items],
                [i["answer"] for i in items],
                [i["joiner"] for i in items],
                batch_size=batch_size,
                predictions=False,
            )
            value = sum(scores.exact_match) / len(items)
            return {"lang": language, "probe": label, "metric": "exact match", "value": value, "n": len(items)}

        rows.append(exact_match("fact_qa", "fact QA"))
        texts = [i["text"] for i in pick("perplexity")]
        rows.append(
            {
                "lang": language,
                "probe": "held-out text",
                "metric": "perplexity",
                "value": perplexity(model, tokenizer, texts, batch_size),
                "n": len(texts),
            }
        )
        rows.append(exact_match("translation", "name translation"))
        for name, label in (
            ("verification", "fact verification"),
            ("verification_held_out", "fact verification, held-out facts"),
        ):
            correct = choice_accuracy(model, tokenizer, pick(name), batch_size)
            rows.append(
                {
                    "lang": language,
                    "probe": label,
                    "metric": "accuracy",
                    "value": sum(correct) / len(correct),
                    "n": len(correct),
                }
            )
    return pd.DataFrame(rows)
