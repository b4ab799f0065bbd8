"""The value step's reach (study.value_steps): one run allowed many steps stands for every smaller allowance,
the curve and the choice follow their rule, bad settings are refused, and the sweep resumes by language."""

import pandas as pd
import pytest

from langedit_mini.data.schedules import distinct_subjects, split_facts
from langedit_mini.study.value_steps import (
    check_counts,
    choose_steps,
    reach_curve,
    sweep_value_steps,
    value_step_reach,
)


@pytest.fixture(scope="module")
def tuning_batch(pocket_testbed):
    _, tuning = split_facts(pocket_testbed.requests, 200)
    return distinct_subjects([r for r in tuning if r.lang == "de"], 6, 0)


def test_one_long_run_gives_every_shorter_allowance(pocket_testbed, tuning_batch):
    """A request stops on its own and never reads another's rows: what an allowance of 12 steps reaches is what
    a run allowed 40 steps reached within 12, with the same final NLL for the requests that stopped by then."""
    short = value_step_reach(pocket_testbed, [tuning_batch], most=12)
    long = value_step_reach(pocket_testbed, [tuning_batch], most=40)
    assert list(short.fact_id) == list(long.fact_id)
    assert (short.steps <= 12).all() and (long.steps <= 40).all()
    within = long.reached & (long.steps <= 12)
    assert list(within) == list(short.reached)
    stopped = long.steps < 12
    assert stopped.any() or not short.reached.any()
    assert long.final_nll[stopped].to_numpy() == pytest.approx(short.final_nll[stopped].to_numpy(), abs=1e-4)
    assert long.reached.sum() >= short.reached.sum()
    assert (long.target_tokens >= 1).all() and set(long.lang) == {"de"}


def test_curve_rises_with_the_allowance_and_counts_every_request(pocket_testbed, tuning_batch):
    reach = value_step_reach(pocket_testbed, [tuning_batch[:3], tuning_batch[3:]], most=30)
    assert list(reach.batch) == [0, 0, 0, 1, 1, 1]
    curve = reach_curve(reach, (5, 10, 30))
    german = curve[curve.lang == "de"].sort_values("steps")
    assert german.reached.is_monotonic_increasing
    assert german.reached.iloc[-1] == pytest.approx(reach.reached.mean())
    assert (curve.requests == 6).all()
    with pytest.raises(ValueError, match="no request"):
        reach_curve(reach.iloc[:0])


def test_choice_is_the_fewest_steps_every_language_reaches():
    curve = pd.DataFrame(
        [
            {"lang": lang, "steps": steps, "reached": share}
            for lang, shares in {"en": (0.95, 1.0, 1.0), "zh": (0.5, 0.85, 0.95)}.items()
            for steps, share in zip((25, 50, 100), shares)
        ]
        + [{"lang": "all", "steps": 25, "reached": 0.7}]
    )
    chosen = choose_steps(curve, 0.9)
    assert chosen == {"steps": 100, "met": True, "share": 0.9, "worst": 0.95, "short": ["zh"]}
    assert choose_steps(curve, 0.8)["steps"] == 50
    never = choose_steps(curve, 0.99)
    assert never["steps"] == 100 and not never["met"]


@pytest.mark.parametrize(
    ("counts", "share", "message"),
    [((0, 25), 0.9, "positive integers"), ((), 0.9, "positive integers"), ((25,), 1.5, "share")],
)
def test_bad_settings_say_what_is_wrong(counts, share, message):
    with pytest.raises(ValueError, match=message):
        check_counts(counts, share)


def test_sweep_resumes_by_language_and_refuses_other_settings(pocket_testbed, tmp_path):
    logged = []
    options = {"batches": 1, "batch_size": 2, "tuning_facts": 200, "counts": (5, 20)}
    first = sweep_value_steps(pocket_testbed, tmp_path, languages=["en"], log=logged.append, **options)
    assert first["languages"] == ["en"] and set(first["timings_s"]) == {"en"}
    second = sweep_value_steps(pocket_testbed, tmp_path, languages=["en", "zh"], log=logged.append, **options)
    assert "en: already run" in logged
    third = sweep_value_steps(pocket_testbed, tmp_path, languages=["zh"], log=logged.append, **options)
    assert third["languages"] == ["en", "zh"]  # the record covers what reach.csv holds
    reach = pd.read_csv(tmp_path / "reach.csv")
    assert sorted(reach.lang.unique()) == ["en", "zh"] and len(reach) == 4
    assert second["chosen"]["steps"] in (5, 20) and second["package_hash"]
    assert second["values"]["file_steps"] >= 1 and "steps" not in second["values"]
    with pytest.raises(ValueError, match="other settings"):
        sweep_value_steps(pocket_testbed, tmp_path, languages=["en"], log=logged.append, **options | {"batches": 2})
    with pytest.raises(ValueError, match="unknown languages"):
        sweep_value_steps(pocket_testbed, tmp_path / "x", languages=["xx"], log=logged.append, **options)
    with pytest.raises(ValueError, match="most must be"):
        value_step_reach(pocket_testbed, [], most=0)
