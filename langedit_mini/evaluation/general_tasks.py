"""General ability of a real LLM before and after editing: XNLI, PAWS-X, MLQA and WikiANN, few-shot.

The paper checks that editing leaves a model's general multilingual ability intact on four tasks,
prompted few-shot. Here each task is one entry of ``TASKS``: where its data lives on the Hugging
Face hub, which of our six languages it has, how an item becomes a prompt, and how it is scored:

* XNLI (natural language inference) and PAWS-X (paraphrase identification): the model's choice is
  the answer word with the highest log-likelihood after the prompt; the score is accuracy (chance
  1/3 and 1/2).
* MLQA (extractive QA): greedy generation up to the end of the line; SQuAD-style token F1 and exact
  match against the best gold answer (characters instead of words for Chinese).
* WikiANN (named entities): the model lists ``entity (TYPE)`` pairs; micro F1 over pairs.

Instructions are in English and the items in the item's language, the usual cross-lingual
few-shot setup. Items are stored in one normal form per task (``load_task`` documents it); data
comes from a local folder (``root``: ``<task>_<lang>.json`` with ``shots`` and ``test`` lists, how
the tests and the offline book run it) or from the hub through ``datasets`` (needs the network),
cached in that same form so a second run works offline. A task that lacks a language (XNLI has no
Dutch) is reported as unavailable, never silently dropped.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from langedit_mini.data.caches import cache_folder
from langedit_mini.data.languages import check_language
from langedit_mini.evaluation.scoring import answer_log_likelihoods, greedy_continuations
from langedit_mini.model.tokens import evaluation_mode, pad_token_id

DEFAULT_CACHE = cache_folder("general")  # $LANGEDIT_CACHE/general when set (caches.py)
ENTITY_TYPES = ("PER", "ORG", "LOC")
#: WikiANN's tag ids: O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC.
WIKIANN_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


@dataclass(frozen=True)
class Task:
    name: str
    hub_id: str
    languages: tuple[str, ...]
    fields: tuple[str, ...]  # the fields of an item in normal form
    kind: str  # "choice" or "generate"
    choices: tuple[str, ...] = ()  # answer words, by label id

    def config(self, language: str) -> str:
        return f"mlqa.{language}.{language}" if self.name == "mlqa" else language


TASKS = {
    "xnli": Task(
        "xnli",
        "facebook/xnli",
        ("en", "de", "es", "fr", "zh"),
        ("premise", "hypothesis", "label"),
        "choice",
        (" yes", " maybe", " no"),
    ),
    "pawsx": Task(
        "pawsx",
        "google-research-datasets/paws-x",
        ("en", "de", "es", "fr", "zh"),
        ("sentence1", "sentence2", "label"),
        "choice",
        (" no", " yes"),
    ),
    "mlqa": Task("mlqa", "facebook/mlqa", ("en", "de", "es", "zh"), ("context", "question", "answers"), "generate"),
    "wikiann": Task(
        "wikiann", "unimelb-nlp/wikiann", ("en", "de", "nl", "es", "fr", "zh"), ("tokens", "entities"), "generate"
    ),
}


def check_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown general-ability task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[name]


# ----------------------------------------------------------------------------------------- prompts


def _sentence(tokens: list[str], language: str) -> str:
    return ("" if language == "zh" else " ").join(tokens)


def _entity_answer(item: dict) -> str:
    if not item["entities"]:
        return " none"
    return " " + "; ".join(f"{text} ({kind})" for text, kind in item["entities"])


def prompt(task: Task, item: dict, language: str) -> str:
    """The item's question part, ending where the answer starts (the answer begins with a space)."""
    if task.name == "xnli":
        return (
            f"Premise: {item['premise']}\nHypothesis: {item['hypothesis']}\n"
            "Does the premise entail the hypothesis? Answer yes, maybe or no.\nAnswer:"
        )
    if task.name == "pawsx":
        return (
            f"Sentence 1: {item['sentence1']}\nSentence 2: {item['sentence2']}\n"
            "Do both sentences mean the same thing? Answer yes or no.\nAnswer:"
        )
    if task.name == "mlqa":
        return f"Context: {item['context']}\nQuestion: {item['question']}\nAnswer:"
    return f"Sentence: {_sentence(item['tokens'], language)}\nEntities (PER, ORG, LOC; 'none' if there is none):"


def gold_answer(task: Task, item: dict) -> str:
    if task.kind == "choice":
        return task.choices[item["label"]]
    if task.name == "mlqa":
        return " " + item["answers"][0]
    return _entity_answer(item)


def few_shot_prompt(task: Task, shots: list[dict], item: dict, language: str) -> str:
    blocks = [prompt(task, shot, language) + gold_answer(task, shot) for shot in shots]
    return "\n\n".join(blocks + [prompt(task, item, language)])


# ----------------------------------------------------------------------------------------- data


def _check_items(task: Task, items, where: str) -> list[dict]:
    if not isinstance(items, list):
        raise ValueError(f"{where}: expected a list of items, got {type(items).__name__}")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{where} item {index}: expected an object")
        for name in task.fields:
            if name not in item:
                raise ValueError(
                    f"{where} item {index}: missing field {name!r} (a {task.name} item has {', '.join(task.fields)})"
                )
        if task.kind == "choice" and item["label"] not in range(len(task.choices)):
            raise ValueError(f"{where} item {index}: label {item['label']!r} is not one of 0..{len(task.choices) - 1}")
        if task.name == "mlqa" and (not isinstance(item["answers"], list) or not item["answers"]):
            raise ValueError(f"{where} item {index}: answers must be a non-empty list")
        if task.name == "wikiann":
            for entity in item["entities"]:
                if len(entity) != 2 or entity[1] not in ENTITY_TYPES:
                    raise ValueError(
                        f"{where} item {index}: entity {entity!r} must be [text, one of {', '.join(ENTITY_TYPES)}]"
                    )
    return items


def wikiann_entities(tokens: list[str], tags: list[int], language: str) -> list[list[str]]:
    """``[[text, TYPE], ...]`` from WikiANN's BIO tag ids."""
    entities, current, kind = [], [], None
    for token, tag in zip(tokens, tags):
        name = WIKIANN_TAGS[tag]
        if name.startswith("B-") or (name.startswith("I-") and name[2:] != kind):
            if current:
                entities.append([_sentence(current, language), kind])
            current, kind = [token], name[2:]
        elif name.startswith("I-"):
            current.append(token)
        else:
            if current:
                entities.append([_sentence(current, language), kind])
            current, kind = [], None
    if current:
        entities.append([_sentence(current, language), kind])
    return entities


def _normalise_hub_item(task: Task, row: dict, language: str) -> dict:
    if task.name == "xnli":
        return {"premise": row["premise"], "hypothesis": row["hypothesis"], "label": int(row["label"])}
    if task.name == "pawsx":
        return {"sentence1": row["sentence1"], "sentence2": row["sentence2"], "label": int(row["label"])}
    if task.name == "mlqa":
        return {"context": row["context"], "question": row["question"], "answers": list(row["answers"]["text"])}
    return {"tokens": list(row["tokens"]), "entities": wikiann_entities(row["tokens"], row["ner_tags"], language)}


def _from_hub(task: Task, language: str, shots: int, items: int) -> dict:
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            "general-ability tasks from the hub need `datasets` (pip install datasets) and the "
            "network; or pass root= (a folder of <task>_<lang>.json files)"
        ) from error
    parts = {}
    for part, split, count in (("shots", "validation", shots), ("test", "test", items)):
        try:
            stream = datasets.load_dataset(task.hub_id, task.config(language), split=split, streaming=True)
            rows = []
            for row in stream:
                rows.append(_normalise_hub_item(task, row, language))
                if len(rows) == count:
                    break
        except Exception as error:  # network, hub and configuration errors all end here
            raise RuntimeError(
                f"could not read {task.hub_id} ({task.config(language)}, {split}): {error}. "
                "Offline? Use a cache or root="
            ) from error
        parts[part] = rows
    return parts


def load_task(
    name: str,
    language: str,
    *,
    shots: int = 3,
    items: int = 50,
    root: str | Path | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
) -> dict:
    """``{"shots": [...], "test": [...]}`` in the task's normal form (see ``TASKS[name].fields``).

    Normal forms: xnli ``premise, hypothesis, label`` (0 entailment, 1 neutral, 2 contradiction);
    pawsx ``sentence1, sentence2, label`` (1 = same meaning); mlqa ``context, question, answers``;
    wikiann ``tokens, entities`` (``[[text, "PER"|"ORG"|"LOC"], ...]``).
    """
    task = check_task(name)
    language = check_language(language)
    for what, value in (("shots", shots), ("items", items)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if what == "shots" else 1):
            raise ValueError(f"{what} must be an integer >= {0 if what == 'shots' else 1}, got {value!r}")
    if root is not None:
        path = Path(root) / f"{name}_{language}.json"
        if not path.is_file():
            raise FileNotFoundError(f"no {name} data for {language}: {path} does not exist")
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        if language not in task.languages:
            raise LookupError(f"{task.hub_id} has no {language}")
        path = Path(cache_dir) / f"{name}_{language}_{shots}_{items}.json" if cache_dir is not None else None
        if path is not None and path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
        else:
            data = _from_hub(task, language, shots, items)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    if not isinstance(data, dict) or "shots" not in data or "test" not in data:
        raise ValueError(f"{name} {language}: expected an object with 'shots' and 'test' lists")
    where = str(path) if path is not None else f"{name} {language}"
    test = _check_items(task, data["test"], f"{where} test")[:items]
    if not test:
        raise ValueError(f"{where}: no test items")
    return {"shots": _check_items(task, data["shots"], f"{where} shots")[:shots], "test": test}


# ----------------------------------------------------------------------------------------- scoring


def _truncate(ids: list[int], limit: int) -> list[int]:
    return ids[-limit:] if len(ids) > limit else ids


def choice_log_likelihoods(
    model, tokenizer, prompts: list[str], choices: tuple[str, ...], *, max_tokens: int = 1024, batch_size: int = 8
) -> torch.Tensor:
    """``(len(prompts), len(choices))``: summed log-probability of each choice's tokens after each prompt."""
    choice_ids = [tokenizer(choice, add_special_tokens=False)["input_ids"] for choice in choices]
    rows = []
    for prompt_text in prompts:
        prompt_ids = tokenizer(prompt_text)["input_ids"]
        for ids in choice_ids:
            rows.append((_truncate(prompt_ids, max_tokens - len(ids)), ids))
    pad = pad_token_id(tokenizer)
    scores = answer_log_likelihoods(model, [p for p, _ in rows], [c for _, c in rows], pad, batch_size)
    return torch.tensor(scores).view(len(prompts), len(choices))


def generate_lines(
    model, tokenizer, prompts: list[str], *, max_new_tokens: int = 24, max_tokens: int = 1024, batch_size: int = 8
) -> list[str]:
    """Greedy continuation of each prompt, cut at the first newline."""
    pad = pad_token_id(tokenizer)
    prompt_ids = [_truncate(tokenizer(p)["input_ids"], max_tokens - max_new_tokens) for p in prompts]
    outputs = []
    with evaluation_mode(model):
        for start in range(0, len(prompt_ids), batch_size):
            batch = prompt_ids[start : start + batch_size]
            for continuation in greedy_continuations(model, batch, [max_new_tokens] * len(batch), pad):
                outputs.append(tokenizer.decode(continuation, skip_special_tokens=True).split("\n")[0].strip())
    return outputs


def _answer_tokens(text: str, language: str) -> list[str]:
    text = text.lower()
    text = "".join(" " if ch in string.punctuation or ch in "，。？！、：；（）《》“”" else ch for ch in text)
    if language == "zh":
        return [ch for ch in text if not ch.isspace()]
    words = text.split()
    if language == "en":
        words = [w for w in words if w not in ("a", "an", "the")]
    return words


def answer_f1(prediction: str, gold: str, language: str) -> float:
    predicted, expected = _answer_tokens(prediction, language), _answer_tokens(gold, language)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if not predicted or not expected:
        return float(predicted == expected)
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


_ENTITY = re.compile(r"\s*(.+?)\s*\((PER|ORG|LOC)\)\s*$")


def parse_entities(text: str) -> set[tuple[str, str]]:
    """``{(text, TYPE)}`` from ``"Obama (PER); Paris (LOC)"``; anything else in the line is ignored."""
    found = set()
    for part in text.split(";"):
        match = _ENTITY.match(part)
        if match:
            found.add((match.group(1), match.group(2)))
    return found


def load_all(tasks, languages, **kwargs) -> tuple[dict, list[tuple[str, str, str]]]:
    """Load every (task, language) once: ``({(task, lang): data}, unavailable)``.

    ``unavailable`` lists ``(task, language, why)`` for pairs with no data (a language the dataset
    lacks, a missing local file); other failures (network, malformed files) raise.
    """
    data, unavailable = {}, []
    for name in tasks:
        check_task(name)
        for language in languages:
            try:
                data[(name, language)] = load_task(name, language, **kwargs)
            except (FileNotFoundError, LookupError) as error:
                unavailable.append((name, language, str(error)))
    if not data:
        raise ValueError(
            f"no general-ability data for tasks {list(tasks)} in languages {list(languages)}: "
            + "; ".join(why for _, _, why in unavailable)
        )
    return data, unavailable


def evaluate_tasks(
    model, tokenizer, data: dict, *, max_tokens: int = 1024, max_new_tokens: int = 24, batch_size: int = 8
) -> pd.DataFrame:
    """Score every loaded (task, language): rows ``task, lang, metric, value, n, chance``."""
    if not isinstance(max_tokens, int) or max_tokens <= max_new_tokens:
        raise ValueError(f"max_tokens must be an integer above max_new_tokens ({max_new_tokens}), got {max_tokens!r}")
    rows = []
    for (name, language), loaded in data.items():
        task = check_task(name)
        prompts = [few_shot_prompt(task, loaded["shots"], item, language) for item in loaded["test"]]
        n = len(prompts)
        if task.kind == "choice":
            chosen = (
                choice_log_likelihoods(
                    model, tokenizer, prompts, task.choices, max_tokens=max_tokens, batch_size=batch_size
                )
                .argmax(dim=1)
                .tolist()
            )
            accuracy = sum(c == item["label"] for c, item in zip(chosen, loaded["test"])) / n
            rows.append(
                {
                    "task": name,
                    "lang": language,
                    "metric": "accuracy",
                    "value": accuracy,
                    "n": n,
                    "chance": 1 / len(task.choices),
                }
            )
            continue
        outputs = generate_lines(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, max_tokens=max_tokens, batch_size=batch_size
        )
        if name == "mlqa":
            f1 = [max(answer_f1(o, g, language) for g in item["answers"]) for o, item in zip(outputs, loaded["test"])]
            exact = [
                any(_answer_tokens(o, language) == _answer_tokens(g, language) for g in item["answers"])
                for o, item in zip(outputs, loaded["test"])
            ]
            rows += [
                {"task": name, "lang": language, "metric": "f1", "value": sum(f1) / n, "n": n, "chance": 0.0},
                {
                    "task": name,
                    "lang": language,
                    "metric": "exact_match",
                    "value": sum(exact) / n,
                    "n": n,
                    "chance": 0.0,
                },
            ]
        else:
            predicted = [parse_entities(o) for o in outputs]
            gold = [{(text, kind) for text, kind in item["entities"]} for item in loaded["test"]]
            hits = sum(len(p & g) for p, g in zip(predicted, gold))
            n_predicted, n_gold = sum(map(len, predicted)), sum(map(len, gold))
            precision = hits / n_predicted if n_predicted else 0.0
            recall = hits / n_gold if n_gold else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            rows.append({"task": name, "lang": language, "metric": "entity_f1", "value": f1, "n": n, "chance": 0.0})
    return pd.DataFrame(rows, columns=["task", "lang", "metric", "value", "n", "chance"])
