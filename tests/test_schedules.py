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
