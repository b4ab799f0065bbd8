"""Editing schedules (reference, section 5): which requests go into which batch, in which order.

Every schedule draws from one seeded order of *facts* (a fact is the same edit in every language,
``EditRequest.fact_id``), so the schedules differ only in how languages are arranged:

* ``delta`` (language blocks): batch ``t`` holds ``batch_size`` facts, all in language
  ``languages[t % len(languages)]``; each language gets ``edits_per_language`` edits.
* ``mt`` (mixed): the same facts, the languages interleaved inside every batch (request ``i`` of the
  sequence is in ``languages[i % len(languages)]``).
* ``mono``: one language only (``languages`` must name exactly one).

Which facts: ``facts="distinct"`` (the default) edits a fact once, in one language, so the edits are
``edits_per_language x len(languages)`` different facts. ``facts="parallel"`` edits the same
``edits_per_language`` facts in every language, each language's prompt being its own edit (one key
per language): the shape of the LangEdit paper's main run, 6 languages x 400 MzsRE edits, which
MzsRE's 743 facts can only fill this way. In ``delta`` the facts of one group of ``batch_size``
go through the languages in consecutive batches; in ``mt`` a fact's six requests are neighbours.

The fact order puts every subject's first fact before any
subject's second one (subjects are shuffled by the seed), so a short sequence edits distinct
subjects and two facts about one subject meet as late as possible; ``Schedule.repeated_subjects``
counts how often they do meet inside one batch. Nothing is dropped silently: asking for more edits
than the data holds is an error that gives the numbers.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.languages import check_languages

SCHEDULES = ("delta", "mt", "mono")
FACT_MODES = ("distinct", "parallel")


@dataclass
class Schedule:
    """A sequence of batches and how it was made."""

    name: str
    languages: tuple[str, ...]
    batches: list[list[EditRequest]]
    seed: int
    facts: str = "distinct"

    @property
    def batch_languages(self) -> list[str]:
        """Per batch: its language, or "mixed"."""
        return [b[0].lang if len({r.lang for r in b}) == 1 else "mixed" for b in self.batches]

    @property
    def requests(self) -> list[EditRequest]:
        return [r for batch in self.batches for r in batch]

    @property
    def repeated_subjects(self) -> int:
        """Requests whose subject already occurs earlier in the same batch (possible key conflicts)."""
        return sum(count - 1 for batch in self.batches for count in Counter(r.subject for r in batch).values())

    def summary(self) -> str:
        sizes = ", ".join(f"{n} x {s}" for s, n in Counter(len(b) for b in self.batches).items())
        name = f"{self.name} (parallel facts)" if self.facts == "parallel" else self.name
        return (
            f"{name}: {len(self.batches)} batches ({sizes} "
            f"edits), {len(self.requests)} edits in {', '.join(self.languages)}, "
            f"{self.repeated_subjects} repeated subjects within a batch, seed {self.seed}"
        )


def fact_order(requests: list[EditRequest], languages: tuple[str, ...], seed: int) -> list[str]:
    """Fact ids present in every language, seeded, each subject's k-th fact after every subject's (k-1)-th."""
    by_language = defaultdict(set)
    subjects = {}
    for request in requests:
        if not request.fact_id:
            raise ValueError(f"request {request.question!r} has no fact_id: schedules align facts across languages")
        by_language[request.lang].add(request.fact_id)
        if request.lang == languages[0]:
            subjects[request.fact_id] = request.subject
    shared = set.intersection(*(by_language[language] for language in languages)) if languages else set()
    rng = random.Random(seed)
    facts = sorted(shared)
    rng.shuffle(facts)
    seen = Counter()
    rank = {}
    for fact in facts:  # the k-th time this subject appears -> rank k
        rank[fact] = seen[subjects[fact]]
        seen[subjects[fact]] += 1
    return sorted(facts, key=lambda fact: rank[fact])  # stable: the shuffle decides within a rank


def build_schedule(
    requests: list[EditRequest],
    schedule: str = "delta",
    languages=("en",),
    *,
    edits_per_language: int = 100,
    batch_size: int = 100,
    seed: int = 0,
    facts: str = "distinct",
) -> Schedule:
    """Batches of ``requests`` for ``schedule`` (one of SCHEDULES) and ``facts`` (one of FACT_MODES);
    see the module docstring."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if facts not in FACT_MODES:
        raise ValueError(f"unknown facts mode {facts!r}; choose one of {', '.join(FACT_MODES)}")
    if not isinstance(languages, str) and not languages:
        raise ValueError(f"languages must be a non-empty list of distinct codes, got {languages!r}")
    languages = check_languages(languages)
    if schedule == "mono" and len(languages) != 1:
        raise ValueError(f"schedule 'mono' edits one language; got languages={languages!r}")
    for name, value in (("edits_per_language", edits_per_language), ("batch_size", batch_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if schedule == "delta" and edits_per_language % batch_size:
        raise ValueError(
            f"schedule 'delta' fills whole language batches: edits_per_language ({edits_per_language}) "
            f"must be a multiple of batch_size ({batch_size})"
        )
    lookup = {(r.fact_id, r.lang): r for r in requests}
    mode, order = facts, fact_order(requests, languages, seed)
    total = edits_per_language * len(languages)
    needed = edits_per_language if mode == "parallel" else total
    if needed > len(order):
        raise ValueError(
            f"{needed} facts needed ({edits_per_language} edits x {len(languages)} languages, {mode} facts) but "
            f"only {len(order)} facts exist in all of {', '.join(languages)}"
        )
    order = order[:needed]
    if mode == "parallel":  # every fact in every language, a fact's languages next to each other
        sequence = [(fact, language) for fact in order for language in languages]
    else:
        sequence = [(fact, languages[i % len(languages)]) for i, fact in enumerate(order)]
    if schedule in ("mt", "mono"):  # the last batch may be smaller
        batches = [[lookup[item] for item in sequence[i : i + batch_size]] for i in range(0, total, batch_size)]
    else:
        batches = []
        for t in range(total // batch_size):
            language = languages[t % len(languages)]
            group = t // len(languages) if mode == "parallel" else t
            chosen = order[group * batch_size : (group + 1) * batch_size]
            batches.append([lookup[(fact, language)] for fact in chosen])
    return Schedule(schedule, languages, batches, seed, mode)


def distinct_subjects(requests: list[EditRequest], count: int, seed: int) -> list[EditRequest]:
    """``count`` requests of distinct subjects, drawn in a seeded order (one batch without key conflicts)."""
    chosen, seen = [], set()
    for request in random.Random(seed).sample(requests, len(requests)):
        if request.subject not in seen:
            seen.add(request.subject)
            chosen.append(request)
    if len(chosen) < count:
        raise ValueError(f"only {len(chosen)} distinct subjects, {count} asked")
    return chosen[:count]


def split_facts(
    requests: list[EditRequest], tuning_facts: int, *, salt: str = "tuning"
) -> tuple[list[EditRequest], list[EditRequest]]:
    """``(study, tuning)``: the requests of ``tuning_facts`` facts set aside for tuning hyperparameters,
    and the rest, split by fact (every language of a fact on one side), so a study never edits a fact
    its hyperparameters were tuned on. The tuning facts are those whose ``sha256(salt + fact_id)`` comes
    first: the split depends only on the fact ids, not on the order, the languages or a seed."""
    import hashlib

    facts = sorted({r.fact_id for r in requests})
    if not isinstance(tuning_facts, int) or isinstance(tuning_facts, bool) or not 0 < tuning_facts < len(facts):
        raise ValueError(f"tuning_facts must be an integer in 1..{len(facts) - 1}, got {tuning_facts!r}")
    ranked = sorted(facts, key=lambda fact: hashlib.sha256((salt + fact).encode()).hexdigest())
    tuning = set(ranked[:tuning_facts])
    return [r for r in requests if r.fact_id not in tuning], [r for r in requests if r.fact_id in tuning]
