"""From facts to the pocket world's files: training corpus, editing dataset, probes.

Everything is deterministic: facts are sorted, every random choice draws from
``random.Random(seed)`` in a fixed order, and files are written with sorted keys, so regenerating
gives byte-identical files (``tests/test_pocket_world.py`` checks their hashes).

Splits (per relation, seeded):
* ``edit`` facts (half): may be edited. Their paraphrase form (questions[2]) is never trained.
* ``keep`` facts (the other half): never edited. Their paraphrase form is trained, so the form is
  familiar; they supply locality questions and the general-ability probes.
Held out for every fact: statements[2] (perplexity probe) and questions[3].
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from langedit_mini.pocket.build.facts import LANGUAGES, Fact
from langedit_mini.pocket.templates import (
    ANSWER_JOINER,
    PROFILE_FORMAT,
    PROFILE_PHRASE,
    STATEMENT_END,
    render,
    templates,
)

PROFILE_PERMUTATIONS = 2  # profile lines per entity and language, each with its own attribute order

SEED = 20250610  # arXiv 2506.10800

# Cross-lingual name lines: "[en] Germany [de] Deutschland" (the translation probe).
LANGUAGE_TAG = {language: f"[{language}]" for language in LANGUAGES}
# Two-hop question for portability: the continent of a city's country.
CITY_CONTINENT_QUESTION = {
    "en": "Q: On which continent is the city {s}? A:",
    "de": "F: Auf welchem Kontinent liegt die Stadt {s}? A:",
    "nl": "V: Op welk continent ligt de stad {s}? A:",
    "es": "P: ¿En qué continente está la ciudad {s}? R:",
    "fr": "Q : Sur quel continent se trouve la ville {s} ? R :",
    "zh": "问：城市{s}位于哪个大洲？答：",
}
# Yes/no fact verification: the statement, then the question and the answer word.
VERIFY = {
    "en": ("True or false?", "true", "false"),
    "de": ("Wahr oder falsch?", "wahr", "falsch"),
    "nl": ("Waar of onwaar?", "waar", "onwaar"),
    "es": ("¿Verdadero o falso?", "verdadero", "falso"),
    "fr": ("Vrai ou faux ?", "vrai", "faux"),
    "zh": ("对还是错？", "对", "错"),
}


def join(prefix: str, answer: str, language: str) -> str:
    return f"{prefix}{ANSWER_JOINER[language]}{answer}"


def statement(prefix: str, answer: str, language: str) -> str:
    return join(prefix, answer, language) + STATEMENT_END[language]


@dataclass
class PocketWorld:
    corpus: list[str]
    edits: list[dict]
    probes: dict
    splits: dict[str, str]


def split_facts(facts: list[Fact], rng: random.Random) -> dict[str, str]:
    by_relation = defaultdict(list)
    for fact in facts:
        by_relation[fact.relation].append(fact.fact_id)
    splits = {}
    for relation in sorted(by_relation):
        ids = sorted(by_relation[relation])
        rng.shuffle(ids)
        for index, fact_id in enumerate(ids):
            splits[fact_id] = "edit" if index % 2 == 0 else "keep"
    return splits


def counterfactual(fact: Fact, pool: list[Fact], rng: random.Random) -> Fact:
    """A same-relation fact whose answer is never one of ``fact``'s true answers, in any language."""
    candidates = [
        other
        for other in pool
        if other.answer_key != fact.answer_key
        and all(other.answer[language] not in fact.true_answers[language] for language in LANGUAGES)
    ]
    if not candidates:
        raise ValueError(f"no counterfactual target for {fact.fact_id}")
    return candidates[rng.randrange(len(candidates))]


def build_world(facts: list[Fact], seed: int = SEED) -> PocketWorld:
    rng = random.Random(seed)
    facts = sorted(facts, key=lambda fact: fact.fact_id)
    splits = split_facts(facts, rng)
    pools = defaultdict(list)
    for fact in facts:
        pools[fact.relation].append(fact)
    keep = [fact for fact in facts if splits[fact.fact_id] == "keep"]
    continent_of = {fact.subject_key: fact for fact in facts if fact.relation == "continent"}

    corpus = []
    for fact in facts:
        for language in LANGUAGES:
            forms = templates(fact.relation, language)
            subject, answer = fact.subject[language], fact.answer[language]
            corpus.append(statement(render(forms["statements"][0], subject), answer, language))
            corpus.append(join(render(forms["questions"][0], subject), answer, language))
            corpus.append(join(render(forms["questions"][1], subject), answer, language))
            if splits[fact.fact_id] == "keep":
                corpus.append(join(render(forms["questions"][2], subject), answer, language))
            if fact.relation == "city_country" and splits[fact.fact_id] == "keep" and fact.answer_key in continent_of:
                continent = continent_of[fact.answer_key].answer[language]
                corpus.append(join(render(CITY_CONTINENT_QUESTION[language], subject), continent, language))

    # Profiles: the subject first, then all its attributes in a random order. Because any attribute
    # may follow the subject, the model has to gather them at the subject's tokens, which is where
    # locate-then-edit methods read and write (without profiles the pocket model looked facts up at
    # the last token and subject-position edits could not change its answers).
    by_subject = defaultdict(list)
    for fact in facts:
        by_subject[
            (
                fact.relation in ("city_country", "language_script"),
                fact.subject_key,
                fact.relation if fact.relation in ("city_country", "language_script") else "country",
            )
        ].append(fact)
    for key in sorted(by_subject):
        entity_facts = by_subject[key]
        for language in LANGUAGES:
            opening, item, separator, end = PROFILE_FORMAT[language]
            subject = entity_facts[0].subject[language]
            for _ in range(PROFILE_PERMUTATIONS):
                order = list(entity_facts)
                rng.shuffle(order)
                items = [item.format(rel=PROFILE_PHRASE[language][f.relation], a=f.answer[language]) for f in order]
                corpus.append(opening.format(s=subject) + separator.join(items) + end)

    # Name translation through English, for countries: "[en] Germany [de] Deutschland" and back.
    translation_items = []
    for fact in facts:
        if fact.relation != "continent":  # one fact per country: its subject names
            continue
        for language in LANGUAGES[1:]:
            for source, target in (("en", language), (language, "en")):
                line = f"{LANGUAGE_TAG[source]} {fact.subject[source]} {LANGUAGE_TAG[target]}"
                corpus.append(f"{line} {fact.subject[target]}")
                translation_items.append(
                    {
                        "fact_id": fact.fact_id,
                        "lang": target,
                        "source_lang": source,
                        "prompt": line,
                        "answer": fact.subject[target],
                        "joiner": " ",
                    }
                )

    # Yes/no verification: trained on half the keep facts. Probed on those (retention: does editing
    # damage a skill the model has) and on the other half (held out: does it verify facts it was
    # never asked to verify; a 3M-parameter model mostly cannot).
    verification_items = {"trained": [], "held_out": []}
    for index, fact in enumerate(keep):
        trained = index % 2 == 0
        wrong = counterfactual(fact, pools[fact.relation], rng)
        for language in LANGUAGES:
            question, yes, no = VERIFY[language]
            prefix = render(templates(fact.relation, language)["statements"][0], fact.subject[language])
            for shown, label in ((fact.answer[language], yes), (wrong.answer[language], no)):
                prompt = f"{statement(prefix, shown, language)}{ANSWER_JOINER[language]}{question}"
                if trained:
                    corpus.append(join(prompt, label, language))
                verification_items["trained" if trained else "held_out"].append(
                    {
                        "fact_id": fact.fact_id,
                        "lang": language,
                        "prompt": prompt,
                        "answer": label,
                        "choices": [yes, no],
                        "joiner": ANSWER_JOINER[language],
                    }
                )

    rng.shuffle(corpus)

    edits = []
    for fact in facts:
        if splits[fact.fact_id] != "edit":
            continue
        target = counterfactual(fact, pools[fact.relation], rng)
        local = keep[rng.randrange(len(keep))]
        for language in LANGUAGES:
            forms = templates(fact.relation, language)
            local_forms = templates(local.relation, language)
            subject = fact.subject[language]
            record = {
                "fact_id": fact.fact_id,
                "relation": fact.relation,
                "lang": language,
                "subject": subject,
                "src": render(forms["questions"][0], subject),
                "rephrase": render(forms["questions"][2], subject),
                "held_out": render(forms["questions"][3], subject),
                "alt": target.answer[language],
                "alt_key": target.answer_key,
                "answer": fact.answer[language],
                "true_answers": fact.true_answers[language],
                "loc": render(local_forms["questions"][1], local.subject[language]),
                "loc_ans": local.answer[language],
                "loc_fact_id": local.fact_id,
                "joiner": ANSWER_JOINER[language],
                "portability": None,
            }
            if fact.relation == "city_country" and target.answer_key in continent_of:
                record["portability"] = {
                    "New Question": render(CITY_CONTINENT_QUESTION[language], subject),
                    "New Answer": continent_of[target.answer_key].answer[language],
                }
            edits.append(record)

    fact_qa, perplexity = [], []
    for fact in keep:
        for language in LANGUAGES:
            forms = templates(fact.relation, language)
            subject, answer = fact.subject[language], fact.answer[language]
            fact_qa.append(
                {
                    "fact_id": fact.fact_id,
                    "lang": language,
                    "prompt": render(forms["questions"][1], subject),
                    "answer": answer,
                    "joiner": ANSWER_JOINER[language],
                }
            )
            perplexity.append(
                {
                    "fact_id": fact.fact_id,
                    "lang": language,
                    "text": statement(render(forms["statements"][2], subject), answer, language),
                }
            )
    probes = {
        "fact_qa": fact_qa,
        "perplexity": perplexity,
        "translation": translation_items,
        "verification": verification_items["trained"],
        "verification_held_out": verification_items["held_out"],
    }
    return PocketWorld(corpus, edits, probes, splits)


def dump_json(value, path: Path) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_world(facts: list[Fact], report: dict, world: PocketWorld, directory: Path) -> dict[str, str]:
    """Write facts, corpus, edits, probes and the build report; return their SHA-256 hashes."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "facts.jsonl", "w", encoding="utf-8") as handle:
        for fact in sorted(facts, key=lambda f: f.fact_id):
            record = fact.to_json() | {"split": world.splits[fact.fact_id]}
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    (directory / "corpus.txt").write_text("\n".join(world.corpus) + "\n", encoding="utf-8")
    dump_json(world.edits, directory / "edits.json")
    dump_json(world.probes, directory / "probes.json")
    dump_json(report, directory / "build_report.json")
    names = ["facts.jsonl", "corpus.txt", "edits.json", "probes.json", "build_report.json"]
    return {name: sha256(directory / name) for name in names}
