"""Running a study one run at a time (``study.runner``) and what is read back (``study.findings``) without
running a study: a run whose claim does not hold is kept with the claim as a finding; any other error keeps
nothing; runs are merged, resumed and checked for staleness; the summary the chapters show."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

import langedit_mini.study.experiment as experiment
from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.schedules import build_schedule
from langedit_mini.study import findings
from langedit_mini.study.experiment import StudyPlan, StudyResult
from langedit_mini.study.findings import describe, full_scale_summary
from langedit_mini.study.provenance import package_hash
from langedit_mini.study.runner import merge, run_part, run_parts
from langedit_mini.study.store import read_raw
from langedit_mini.study.testbeds import TINY_INPUTS, Testbed, run_hash

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run_study(reliability=(0.25, 0.5), error=None):
    """Stands in for ``experiment.run_study``: one batch of two English edits scored ``reliability``, or ``error``."""
    requests, _ = load_pocket(languages=["en"])
    schedule = build_schedule(requests, "delta", ["en"], edits_per_language=2, batch_size=2, seed=0)

    def run_study(model, tokenizer, requests, statistics, plan, *, methods, seeds, **kwargs):
        if error is not None:
            raise error
        method, seed = methods[0], seeds[0]
        evaluations = pd.DataFrame(
            {
                "method": method,
                "seed": seed,
                "after_batch": 0,
                "batch": 0,
                "fact_id": ["a", "b", "a", "b"],
                "lang": "en",
                "metric": ["reliability", "reliability", "locality", "locality"],
                "teacher_forced": [*reliability, 1.0, 1.0],
                "exact_match": [0.0, 1.0, 1.0, 1.0],
            }
        )
        probes = pd.DataFrame(
            {
                "method": ["unedited", method],
                "seed": [-1, seed],
                "after_batch": [-1, 0],
                "lang": "en",
                "probe": "fact QA",
                "metric": "exact match",
                "value": [0.9, 0.8],
                "n": 10,
            }
        )
        transfer = pd.DataFrame({"method": [method], "seed": [seed], "teacher_forced": [0.5]})
        batches = pd.DataFrame(
            {"method": [method], "seed": [seed], "batch": [0], "seconds": [1.0], "capacity_left": [9]}
        )
        return StudyResult(evaluations, probes, transfer, batches, {seed: schedule})

    return run_study


PLAN = StudyPlan(languages=["en"], edits_per_language=2, batch_size=2, probe_every=2, probe_limit=50)


def fake_testbed() -> Testbed:
    """A pocket testbed without a model: the fake study never reads it; C0 of layer 0 given (None)."""
    requests, _ = load_pocket(languages=["en"])
    return Testbed(
        "pocket", None, None, "pocket", "pocket", requests, "", None, "langedit_mini.pocket", _statistics={0: None}
    )


def run_fake_part(tmp_path, monkeypatch, method, **fake):
    monkeypatch.setattr(experiment, "run_study", _fake_run_study(**fake))
    return run_part(fake_testbed(), tmp_path, 0, method, PLAN)


def test_a_failed_claim_at_full_scale_is_kept_as_a_finding(tmp_path, monkeypatch):
    info = run_fake_part(tmp_path, monkeypatch, "LangEdit-exact")
    writes = [claim for claim in info["claims"] if claim["claim"].startswith("every method writes its edits")]
    assert len(info["claims"]) == 3 and writes[0]["value"] == pytest.approx(0.375) and not writes[0]["holds"]
    assert info["failed_claims"] == [
        "claim failed: every method writes its edits (smallest mean reliability, teacher-forced): "
        "measured 3.750e-01, expected >= 5.0e-01"
    ]
    assert json.loads((tmp_path / "parts" / "seed0-LangEdit-exact" / "part.json").read_text()) == info
    assert info["parameters"]["model"] == "pocket" and info["parameters"]["dataset"] == "pocket"
    run_fake_part(tmp_path, monkeypatch, "MEMIT", reliability=(0.5, 1.0))
    provenance = merge(tmp_path, [0, 1], ["MEMIT", "LangEdit-exact"])
    assert provenance["missing"] == ["seed1-MEMIT", "seed1-LangEdit-exact"]
    text = describe(provenance)
    assert (
        "seed0-LangEdit-exact: at full scale this check of the chapter did not hold, kept as a finding: every "
        "method writes its edits" in text
    )
    assert "claim failed" not in text  # the book's check for a failing chapter must not trip on a kept finding
    assert not (tmp_path / "probes.csv.gz").exists()  # raw tables stay in the parts, not copied beside them
    probes = read_raw(tmp_path, "probes")
    assert (probes.method == "unedited").sum() == 1  # the unedited model is measured once, not once per run
    averages = pd.read_csv(tmp_path / "averages.csv", index_col=0)
    assert list(averages.index) == ["MEMIT", "LangEdit-exact"]
    assert averages.loc["MEMIT", "reliability (TF)"] == pytest.approx(0.75)
    summary = full_scale_summary(tmp_path, ["MEMIT", "LangEdit-exact"])
    assert summary["glue"]["full_writes_failed"] == "LangEdit-exact (1 of 1 runs)"
    assert summary["glue"]["full_status"] == "2 of 4 runs, 1 of 2 seeds"
    assert summary["glue"]["full_rel_MEMIT"] == "0.75" and summary["glue"]["full_rel_LangEdit_exact"] == "0.38"
    assert summary["comparisons"]["rel"]["verdict"].startswith("not judged")  # AlphaEdit, LangEdit-published never ran


def test_the_runner_skips_finished_runs_resumes_and_refuses_other_parameters(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "run_study", _fake_run_study())
    lines = []
    made = run_parts(fake_testbed(), tmp_path, PLAN, seeds=[0], methods=["MEMIT", "FT"], max_runs=1, log=lines.append)
    assert made == 1 and (tmp_path / "parts" / "seed0-MEMIT" / "part.json").exists()
    assert not (tmp_path / "parts" / "seed0-FT").exists()  # the session's share was one run
    made = run_parts(fake_testbed(), tmp_path, PLAN, seeds=[0], methods=["MEMIT", "FT"], log=lines.append)
    assert made == 1 and any(line.startswith("seed0-MEMIT: on disk") for line in lines)
    assert json.loads((tmp_path / "provenance.json").read_text())["complete"]
    other = StudyPlan(languages=["en"], edits_per_language=2, batch_size=1)
    with pytest.raises(ValueError, match="was made with other parameters"):
        run_parts(fake_testbed(), tmp_path, other, seeds=[0], methods=["MEMIT"], log=lines.append)
    monkeypatch.setattr("langedit_mini.study.runner.is_current", lambda run_hash, current: False)
    assert run_parts(fake_testbed(), tmp_path, PLAN, seeds=[0], methods=["MEMIT"], rerun_stale=True, log=print) == 1


def test_a_run_records_the_hash_of_its_own_testbed_and_is_stale_against_it(tmp_path, monkeypatch):
    """A run records its testbed's own run hash (its loader and the files it reads, e.g. a real LLM's
    hyperparameter file), not the pocket world's; a rerun of stale runs compares against that same hash."""
    monkeypatch.setattr(experiment, "run_study", _fake_run_study())
    testbed = fake_testbed()
    testbed.loader, testbed.inputs = "langedit_mini.model.loading", TINY_INPUTS
    info = run_part(testbed, tmp_path, 0, "MEMIT", PLAN)
    assert info["package_hash"] == testbed.current_hash() == run_hash("tiny-random-llama")
    assert info["package_hash"] != package_hash()  # the pocket testbed's
    asked = []
    monkeypatch.setattr(
        "langedit_mini.study.runner.is_current", lambda run_hash, current: asked.append(current) or True
    )
    assert run_parts(testbed, tmp_path, PLAN, seeds=[0], methods=["MEMIT"], rerun_stale=True, log=print) == 0
    assert asked == [testbed.current_hash()]


def test_without_a_study_the_summary_says_not_run(tmp_path):
    summary = full_scale_summary(tmp_path, ["MEMIT"])
    assert summary["provenance"] is None and summary["glue"]["full_status"] == "not run"
    assert summary["glue"]["full_rel_verdict"] == "not judged" and summary["glue"]["full_rel_MEMIT"] == "not run"
    with pytest.raises(ValueError, match="unknown raw table 'scores'"):
        read_raw(tmp_path, "scores")


def test_any_other_stop_keeps_no_run(tmp_path, monkeypatch):
    """A crash leaves no finished run behind: the interrupted folder is reported, never merged."""
    with pytest.raises(ValueError, match="parameter languages"):
        run_fake_part(tmp_path, monkeypatch, "MEMIT", error=ValueError("parameter languages must be ..."))
    assert not (tmp_path / "parts" / "seed0-MEMIT").exists() and (tmp_path / "parts" / "seed0-MEMIT.running").exists()
    with pytest.raises(FileNotFoundError, match="no finished part"):
        merge(tmp_path, [0], ["MEMIT"])


def test_staleness_is_checked_when_shown_not_when_merged(tmp_path, monkeypatch):
    """Editing code changed after the merge: the chapter's description warns without a new merge."""
    run_fake_part(tmp_path, monkeypatch, "MEMIT")
    provenance = merge(tmp_path, [0], ["MEMIT"])
    assert provenance["complete"] and "WARNING" not in describe(provenance)
    monkeypatch.setattr(findings, "is_current", lambda run_hash, current=None: False)
    assert (
        "WARNING: the editing code has changed since these full-scale results were made (runs seed0-MEMIT)"
        in describe(provenance)
    )


def test_staleness_parses_todays_code_once_for_all_runs(tmp_path, monkeypatch, hash_work):
    """Hashing the package parses every module: a study's staleness, checked per run, parses each once."""
    from langedit_mini.study.provenance import POCKET_LOADER, STUDY_ENTRY, imported_modules

    for method in ("MEMIT", "AlphaEdit", "FT"):
        run_fake_part(tmp_path, monkeypatch, method)
    provenance = merge(tmp_path, [0], ["MEMIT", "AlphaEdit", "FT"])
    hash_work.start()
    assert findings.stale_runs(provenance) == []  # made by today's code
    assert 0 < hash_work.parsed <= len(imported_modules(STUDY_ENTRY, POCKET_LOADER))


def _final_scores(table: dict) -> pd.DataFrame:
    """Evaluations whose last batch gives each (seed, method) the mean reliability in ``table``; an earlier batch
    with other scores, which the comparison must ignore."""
    rows = []
    for (seed, method), score in table.items():
        for batch, value in ((0, 1.0 - score), (1, score)):
            rows += [
                {
                    "method": method,
                    "seed": seed,
                    "after_batch": batch,
                    "batch": 0,
                    "fact_id": fact,
                    "lang": "en",
                    "metric": "reliability",
                    "teacher_forced": value + offset,
                    "exact_match": 0.0,
                }
                for fact, offset in (("a", -0.05), ("b", 0.05))
            ]
    return pd.DataFrame(rows)


def test_a_claim_is_judged_by_the_interval_of_its_difference_paired_by_seed():
    """One verdict procedure for every claim (``verdicts.paired_verdict``): the 95% interval of the paired
    difference, not a count of seeds above or below."""
    from langedit_mini.study.findings import score_range
    from langedit_mini.study.intervals import final_scores, mean_cell
    from langedit_mini.study.readings import seed_scores
    from langedit_mini.study.verdicts import paired_verdict

    table = {(0, "L"): 0.3, (0, "M"): 0.5, (0, "A"): 0.2, (1, "L"): 0.4, (1, "M"): 0.6, (1, "A"): 0.5}
    table |= {(2, "L"): 0.35, (2, "M"): 0.55, (2, "A"): 0.4}
    evaluations = _final_scores(table)
    scores = seed_scores(evaluations, "reliability")
    assert scores.loc[0, "L"] == pytest.approx(0.3) and scores.loc[1, "A"] == pytest.approx(0.5)
    finals = final_scores(evaluations)
    below = paired_verdict(finals, "reliability", ["L"], ["M"])  # -0.2 each seed: the interval lies below 0
    assert below["verdict"] == "not reproduced" and below["standing"] == "L - M: -0.200 ± 0.000"
    mixed = paired_verdict(finals, "reliability", ["L"], ["A"])  # +0.1, -0.1, -0.05: the interval spans 0
    assert mixed["verdict"] == "not separated" and mixed["seeds"] == 3
    assert paired_verdict(finals, "reliability", ["M"], ["L"])["verdict"] == "reproduced"
    assert paired_verdict(finals, "reliability", ["L"], ["FT"])["verdict"] == "not judged (no run of FT)"
    one_seed = paired_verdict(finals[finals.seed == 0], "reliability", ["L"], ["A"])
    assert one_seed["verdict"] == "not judged (one seed: no interval)"
    assert mean_cell(scores["L"].iloc[:2], 2) == "0.35 ± 0.64"  # t(1) = 12.71 times the standard error 0.05
    assert mean_cell(scores["L"].iloc[:1], 2) == "0.30" and mean_cell([], 2) == "not run"
    assert score_range(scores, ["M", "A"]) == "from 0.37 (A) to 0.55 (M)"  # means over the three seeds
    assert score_range(scores, ["L", "FT"]) == "0.35 (L, the only one run)"
    assert score_range(scores, ["FT"]) == "not run"
    with pytest.raises(ValueError, match="no 'locality' scores"):
        seed_scores(_final_scores({(0, "L"): 0.3}), "locality")


def test_a_runs_provenance_ignores_the_studys_own_merged_results(tmp_path):
    """run_study.py merges into results/ after every run; the next run must not count that as uncommitted code."""
    import subprocess

    from langedit_mini.study.provenance import git_dirty

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "averages.csv").write_text("a\n")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_dirty(tmp_path) is False and git_dirty(tmp_path, exclude=("results",)) is False
    (tmp_path / "results" / "averages.csv").write_text("b\n")
    assert git_dirty(tmp_path) is True and git_dirty(tmp_path, exclude=("results",)) is False
    (tmp_path / "results" / "new.csv").write_text("c\n")  # a new result: still the study's own output
    assert git_dirty(tmp_path, exclude=("results",)) is False
    (tmp_path / "new_module.py").write_text("y = 1\n")  # a new module, not committed yet: a change
    assert git_dirty(tmp_path, exclude=("results",)) is True
    (tmp_path / "new_module.py").unlink()
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_dirty(tmp_path, exclude=("results",)) is True


def test_a_study_scored_every_few_batches_counts_its_scores_against_that_plan():
    """Scored every 3 batches and after the last (3 batches of 2 edits): after batches 0 and 1 only their own 2
    edits (right after the write), after batch 2 all 6. Told the plan, ``study_claims`` counts a score really
    missing; told every batch is a full evaluation, it counts 2 missing after batch 1."""
    from types import SimpleNamespace

    from langedit_mini.study.verdicts import study_claims

    def scored_claim(study, evaluate_every):
        return study_claims(study, evaluate_every)["scored"]

    plan = SimpleNamespace(batches=[["a", "b"], ["c", "d"], ["e", "f"]])
    rows = [(0, 0), (0, 0), (1, 1), (1, 1), (2, 0), (2, 0), (2, 1), (2, 1), (2, 2), (2, 2)]
    evaluations = pd.DataFrame(
        [
            {"metric": "reliability", "method": "MEMIT", "seed": 0, "after_batch": a, "batch": b, "teacher_forced": 1.0}
            for a, b in rows
        ]
    )
    batches = pd.DataFrame([{"method": "MEMIT", "seed": 0, "capacity_left": None}])

    def study(frame):
        return StudyResult(frame, pd.DataFrame(), pd.DataFrame(), batches, {0: plan})

    assert study_claims(study(evaluations))["scored"].value == 2
    claim = scored_claim(study(evaluations), 3)
    assert claim.holds and claim.value == 0 and "every 3 batches and after the last" in claim.claim
    assert scored_claim(study(evaluations.iloc[1:]), 3).value == 1  # one score of batch 0 missing
    assert scored_claim(study(evaluations), 1).claim.startswith("every edit so far is scored after every batch")
    with pytest.raises(ValueError, match="evaluate_every must be a positive integer"):
        scored_claim(study(evaluations), 0)
