"""What editing costs a real LLM's general ability, measured offline: proxies per language.

The paper measures general ability with four XTREME tasks on a 7-8B model; they need the network and a larger model
(the Colab chapter). On a real LLM on a CPU the study measures, before editing and every few batches
(``StudyPlan.probe_every``), three proxies per language, in the tidy form of the pocket probes (lang, probe, metric,
value, n):

* ``held-out text`` / ``perplexity``: exp of the mean negative log-likelihood per token of text no study run edits
  and no C0 reads (for MzsRE: the locality questions of the tuning split's facts, each followed by its answer). It
  moves when editing disturbs the model's language modelling in a language; it cannot tell which knowledge moved.
* ``real facts`` / ``teacher-forced`` and ``exact match``: the true answers of real facts no study edits (the
  pocket world's facts about countries, in the model's prompt format): how much of what the model half-knows stays.
* ``known facts`` / ``retained``: of those facts, the ones the model answered right (greedy exact match) when it
  was first measured (the unedited model: ``study.experiment.run_study`` measures it before any edit), the share
  it still answers right. Its ``n`` is how many the model knew; a small model knows few facts outside English, so
  read it with its ``n`` (NaN where it knew none).

Locality (the unedited model's own answers to unrelated questions) is scored with every edit
(``edit_metrics.evaluate_requests``) and completes the picture; none of these proxies is a downstream task.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pandas as pd
import torch

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.languages import check_languages
from langedit_mini.evaluation.scoring import LOGITS_BUDGET, score
from langedit_mini.model.architecture import check_model_and_tokenizer
from langedit_mini.model.tokens import evaluation_mode, model_device, pad_rows, pad_token_id

#: the prefix MzsRE's English locality questions carry (Natural Questions), taken off the held-out text
NQ_PREFIX = "nq question: "


def held_out_texts(requests: list[EditRequest], per_language: int) -> dict[str, list[str]]:
    """Per language, the first ``per_language`` locality questions of ``requests`` with their answers (question,
    joiner, answer; English's "nq question: " taken off): the held-out text of ``OfflineAbility``. ``requests``
    should be facts no study edits (the tuning split). A language with fewer is an error naming it."""
    texts: dict[str, list[str]] = {}
    for request in requests:
        if request.locality_prompt and request.locality_answer:
            question = request.locality_prompt.removeprefix(NQ_PREFIX).strip()
            mine = texts.setdefault(request.lang, [])
            if len(mine) < per_language and question:
                mine.append(question + request.joiner + request.locality_answer.strip())
    short = {language: len(found) for language, found in texts.items() if len(found) < per_language}
    if short:
        raise ValueError(f"fewer than {per_language} held-out texts in {short}")
    return texts


def fact_sample(facts: list[EditRequest], per_language: int, seed: int = 0) -> dict[str, list[EditRequest]]:
    """Per language, ``per_language`` of ``facts`` drawn with ``seed`` (all of them where there are fewer); every fact
    needs a true answer."""
    missing = [f.fact_id or f.subject for f in facts if not f.true_answers]
    if missing:
        raise ValueError(f"the real facts need their true answers; {missing[:3]} have none")
    by_language: dict[str, list[EditRequest]] = {}
    for fact in facts:
        by_language.setdefault(fact.lang, []).append(fact)
    rng = random.Random(seed)
    return {lang: rng.sample(pool, min(per_language, len(pool))) for lang, pool in by_language.items()}


def text_perplexity(model, tokenizer, texts: list[str]) -> float:
    """exp(mean negative log-likelihood per predicted token) over ``texts``, each tokenised as the tokenizer does
    (with its BOS where it adds one; the first token is never predicted), right padded, in batches whose logits
    stay under ``scoring.LOGITS_BUDGET`` elements."""
    check_model_and_tokenizer(model, tokenizer)
    sequences = [tokenizer(text)["input_ids"] for text in texts]
    short = [text for text, ids in zip(texts, sequences) if len(ids) < 2]
    if short:
        raise ValueError(f"a text needs two tokens to be scored; {short[:3]} have fewer")
    vocabulary = model.get_output_embeddings().weight.shape[0]
    width = max(map(len, sequences))
    rows = max(1, LOGITS_BUDGET // (width * vocabulary))
    device, pad_id = model_device(model), pad_token_id(tokenizer)
    total_nll, total_tokens = 0.0, 0
    with evaluation_mode(model):
        for start in range(0, len(sequences), rows):
            ids, mask = pad_rows(sequences[start : start + rows], pad_id, left=False, device=device)
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
            total_nll += float(
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="sum"
                )
            )
            total_tokens += int((targets != -100).sum())
    return math.exp(total_nll / total_tokens)


@dataclass
class OfflineAbility:
    """The proxies of the module doc for one model: ``model -> DataFrame`` (lang, probe, metric, value, n), the
    callable ``study.experiment.run_study`` takes as ``probes``. The first call fixes the known facts (what that
    model answers right), so it must measure the unedited model; later calls are compared with it."""

    tokenizer: object
    texts: dict[str, list[str]]
    facts: dict[str, list[EditRequest]]
    known: dict[str, list[bool]] | None = field(default=None)

    def __post_init__(self):
        check_languages(list(self.texts))
        check_languages(list(self.facts))
        empty = [lang for lang, items in {**self.texts, **self.facts}.items() if not items]
        if empty:
            raise ValueError(f"no held-out texts or facts in {empty}")

    def __call__(self, model) -> pd.DataFrame:
        rows = []
        languages = list(dict.fromkeys([*self.texts, *self.facts]))
        first = self.known is None
        if first:
            self.known = {}
        for language in languages:
            if language in self.texts:
                texts = self.texts[language]
                value = text_perplexity(model, self.tokenizer, texts)
                rows.append(_row(language, "held-out text", "perplexity", value, len(texts)))
            if language not in self.facts:
                continue
            facts = self.facts[language]
            scores = score(
                model,
                self.tokenizer,
                [f.question for f in facts],
                [f.true_answers[0] for f in facts],
                [f.joiner for f in facts],
                predictions=False,
            )
            rows.append(_row(language, "real facts", "teacher-forced", _mean(scores.teacher_forced), len(facts)))
            rows.append(_row(language, "real facts", "exact match", _mean(scores.exact_match), len(facts)))
            if first:
                self.known[language] = list(scores.exact_match)
            kept = [right for right, knew in zip(scores.exact_match, self.known.get(language, [])) if knew]
            rows.append(_row(language, "known facts", "retained", _mean(kept), len(kept)))
        return pd.DataFrame(rows, columns=["lang", "probe", "metric", "value", "n"])


def _mean(values) -> float:
    values = [float(v) for v in values]
    return sum(values) / len(values) if values else float("nan")


def _row(language: str, probe: str, metric: str, value: float, n: int) -> dict:
    return {"lang": language, "probe": probe, "metric": metric, "value": float(value), "n": int(n)}
