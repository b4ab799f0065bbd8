"""Schedules (reference, section 5): language arrangement, alignment of facts, and refusals."""

from collections import Counter

import pytest

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.schedules import build_schedule, fact_order

REQUESTS, _ = load_pocket()
SIX = ("en", "de", "nl", "es", "fr", "zh")


def test_delta_batches_cycle_through_the_languages_one_language_per_batch():
    schedule = build_schedule(REQUESTS, "delta", SIX, edits_per_language=20, batch_size=10, seed=1)
    assert schedule.batch_languages == list(SIX) * 2
    assert all(len(batch) == 10 for batch in schedule.batches)
    facts = [r.fact_id for r in schedule.requests]
    assert len(set(facts)) == len(facts) == 120  # every fact edited once, in one language


def test_mt_uses_the_same_facts_with_languages_mixed_inside_each_batch():
    delta = build_schedule(REQUESTS, "delta", SIX, edits_per_language=20, batch_size=10, seed=1)
    mixed = build_schedule(REQUESTS, "mt", SIX, edits_per_language=20, batch_size=10, seed=1)
    assert sorted(r.fact_id for r in mixed.requests) == sorted(r.fact_id for r in delta.requests)
    assert all(language == "mixed" for language in mixed.batch_languages)
    assert Counter(r.lang for r in mixed.requests) == Counter({language: 20 for language in SIX})


def test_mono_and_the_seed():
    first = build_schedule(REQUESTS, "mono", ("zh",), edits_per_language=30, batch_size=7, seed=3)
    assert {r.lang for r in first.requests} == {"zh"} and [len(b) for b in first.batches] == [7] * 4 + [2]
    again = build_schedule(REQUESTS, "mono", ("zh",), edits_per_language=30, batch_size=7, seed=3)
    other = build_schedule(REQUESTS, "mono", ("zh",), edits_per_language=30, batch_size=7, seed=4)
    assert [r.fact_id for r in again.requests] == [r.fact_id for r in first.requests]
    assert [r.fact_id for r in other.requests] != [r.fact_id for r in first.requests]


def test_subjects_repeat_only_after_every_subject_has_been_used():
    order = fact_order(REQUESTS, ("en",), seed=0)
    subject = {r.fact_id: r.subject for r in REQUESTS if r.lang == "en"}
    distinct = len(set(subject.values()))
    assert len({subject[f] for f in order[:distinct]}) == distinct
    schedule = build_schedule(REQUESTS, "delta", ("en", "de"), edits_per_language=100, batch_size=100)
    assert schedule.repeated_subjects == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(schedule="blocks"), "unknown schedule"),
        (dict(schedule="mono", languages=("en", "de")), "one language"),
        (dict(languages=("en", "xx")), "unknown language code 'xx'"),
        (dict(languages=("en", "en")), "distinct"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(edits_per_language=30, batch_size=20), "multiple of batch_size"),
        (dict(edits_per_language=5000, batch_size=100), "only"),
    ],
)
def test_bad_schedules_are_refused(kwargs, message):
    arguments = dict(schedule="delta", languages=("en",), edits_per_language=20, batch_size=10) | kwargs
    with pytest.raises(ValueError, match=message):
        build_schedule(REQUESTS, arguments.pop("schedule"), arguments.pop("languages"), **arguments)


def test_parallel_facts_edit_the_same_facts_in_every_language():
    schedule = build_schedule(REQUESTS, "delta", SIX, edits_per_language=20, batch_size=10, seed=1, facts="parallel")
    assert schedule.batch_languages == list(SIX) * 2 and schedule.facts == "parallel"
    by_fact = Counter(r.fact_id for r in schedule.requests)
    assert len(by_fact) == 20 and set(by_fact.values()) == {6}
    assert {(r.fact_id, r.lang) for r in schedule.requests} == {(f, lang) for f in by_fact for lang in SIX}
    # a group of facts goes through the six languages in consecutive batches
    assert all({r.fact_id for r in batch} == {r.fact_id for r in schedule.batches[0]} for batch in schedule.batches[:6])
    mixed = build_schedule(REQUESTS, "mt", SIX, edits_per_language=20, batch_size=12, seed=1, facts="parallel")
    assert Counter(r.fact_id for r in mixed.requests) == by_fact
    assert {r.lang for r in mixed.batches[0]} == set(SIX)
    distinct = build_schedule(REQUESTS, "delta", SIX, edits_per_language=20, batch_size=10, seed=1)
    assert distinct.facts == "distinct" and "parallel" not in distinct.summary()
    assert "parallel facts" in schedule.summary()
    with pytest.raises(ValueError, match="unknown facts mode"):
        build_schedule(REQUESTS, "delta", SIX, edits_per_language=20, batch_size=10, facts="same")
    # parallel needs edits_per_language facts, distinct needs six times as many
    many = len(fact_order(REQUESTS, SIX, 0))
    build_schedule(REQUESTS, "mt", SIX, edits_per_language=many, batch_size=100, facts="parallel")
    with pytest.raises(ValueError, match="facts needed"):
        build_schedule(REQUESTS, "mt", SIX, edits_per_language=many, batch_size=100)


def test_the_tuning_split_is_disjoint_by_fact_and_stable():
    from langedit_mini.data.schedules import split_facts

    study, tuning = split_facts(REQUESTS, 200)
    assert len({r.fact_id for r in tuning}) == 200
    assert not {r.fact_id for r in study} & {r.fact_id for r in tuning}
    assert len(study) + len(tuning) == len(REQUESTS)
    again, _ = split_facts(list(reversed(REQUESTS)), 200)
    assert {r.fact_id for r in again} == {r.fact_id for r in study}
    english, english_tuning = split_facts([r for r in REQUESTS if r.lang == "en"], 200)
    assert {r.fact_id for r in english_tuning} == {r.fact_id for r in tuning}
    with pytest.raises(ValueError, match="tuning_facts"):
        split_facts(REQUESTS, 0)
