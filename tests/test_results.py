"""The full-scale study's bookkeeping (scripts/run_study.py, langedit_mini.results) without running a chapter:
a run whose chapter stops at a failed strict claim is kept as a finding; any other error keeps nothing."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import papermill
import pytest

from langedit_mini.study.results import RAW, describe, merge_parts

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    """``scripts/<name>.py`` as a module (the scripts folder is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _script():
    return load_script("run_study")


def _fake_chapter(error_name, error_value, write=True):
    """Stands in for papermill: writes the raw tables a chapter would, then stops with an error."""

    def execute(notebook, output, parameters, **kwargs):
        method, seed = parameters["methods"][0], parameters["seeds"][0]
        folder = Path(parameters["save_to"])
        frames = {
            "evaluations": pd.DataFrame(
                {
                    "method": method,
                    "seed": seed,
                    "after_batch": 0,
                    "batch": 0,
                    "fact_id": ["a", "b"],
                    "lang": "en",
                    "metric": "reliability",
                    "teacher_forced": [0.25, 0.5],
                    "exact_match": [0.0, 1.0],
                }
            ),
            "probes": pd.DataFrame(
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
            ),
            "transfer": pd.DataFrame({"method": [method], "seed": [seed], "teacher_forced": [0.5]}),
            "batches": pd.DataFrame({"method": [method], "seed": [seed], "batch": [0], "seconds": [1.0]}),
        }
        if write:
            for name in RAW:
                frames[name].to_csv(folder / f"{name}.csv.gz", index=False)
        Path(output).write_text("{}")
        if error_name:
            raise papermill.PapermillExecutionError(
                cell_index=20, exec_count=14, source="require(...)", ename=error_name, evalue=error_value, traceback=[]
            )

    return execute


SHARED = {"edits_per_language": 2, "batch_size": 2, "languages": ["en"], "probe_every": 2, "probe_limit": 50}


def test_a_failed_claim_at_full_scale_is_kept_as_a_finding(tmp_path, monkeypatch):
    script = _script()
    monkeypatch.setattr(
        script.papermill,
        "execute_notebook",
        _fake_chapter("AssertionError", "claim failed: every method writes its edits: 0.3"),
    )
    info = script.run_part(tmp_path, 0, "LangEdit-exact", SHARED)
    assert info["failed_claims"] == ["claim failed: every method writes its edits: 0.3"]
    assert json.loads((tmp_path / "parts" / "seed0-LangEdit-exact" / "part.json").read_text()) == info
    monkeypatch.setattr(script.papermill, "execute_notebook", _fake_chapter(None, None))
    script.run_part(tmp_path, 0, "MEMIT", SHARED)
    provenance = merge_parts(tmp_path, [0, 1], ["MEMIT", "LangEdit-exact"])
    assert provenance["missing"] == ["seed1-MEMIT", "seed1-LangEdit-exact"]
    text = describe(provenance)
    assert (
        "seed0-LangEdit-exact: at full scale this check of the chapter did not hold, kept as a finding: every "
        "method writes its edits: 0.3" in text
    )
    assert "claim failed" not in text  # the book's check for a failing chapter must not trip on a kept finding
    probes = pd.read_csv(tmp_path / "probes.csv.gz")
    assert (probes.method == "unedited").sum() == 1  # the unedited model is measured once, not once per run
    averages = pd.read_csv(tmp_path / "averages.csv", index_col=0)
    assert list(averages.index) == ["MEMIT", "LangEdit-exact"]
    assert averages.loc["MEMIT", "reliability (TF)"] == pytest.approx(0.375)


@pytest.mark.parametrize(
    "error, value, write",
    [("ValueError", "parameter languages must be ...", True), ("AssertionError", "claim failed: x", False)],
)
def test_any_other_stop_keeps_no_run(tmp_path, monkeypatch, error, value, write):
    """A crash, or a failed claim before the raw results were written, leaves no finished run behind."""
    script = _script()
    monkeypatch.setattr(script.papermill, "execute_notebook", _fake_chapter(error, value, write))
    with pytest.raises(papermill.PapermillExecutionError):
        script.run_part(tmp_path, 0, "MEMIT", SHARED)
    assert not (tmp_path / "parts" / "seed0-MEMIT").exists()
    with pytest.raises(FileNotFoundError, match="no finished part"):
        merge_parts(tmp_path, [0], ["MEMIT"])


def test_staleness_is_checked_when_shown_not_when_merged(tmp_path, monkeypatch):
    """Editing code changed after the merge: the chapter's description warns without a new merge."""
    import langedit_mini.study.results as results

    script = _script()
    monkeypatch.setattr(script.papermill, "execute_notebook", _fake_chapter(None, None))
    script.run_part(tmp_path, 0, "MEMIT", SHARED)
    provenance = merge_parts(tmp_path, [0], ["MEMIT"])
    assert provenance["complete"] and "WARNING" not in describe(provenance)
    monkeypatch.setattr(results, "package_hash", lambda: "f" * 16)
    assert (
        "WARNING: the editing code has changed since these full-scale results were made (runs seed0-MEMIT)"
        in describe(provenance)
    )


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


def test_full_scale_comparison_is_judged_seed_by_seed():
    from langedit_mini.study.results import compare_methods, mean_and_interval, score_range, seed_scores

    scores = seed_scores(
        _final_scores({(0, "L"): 0.3, (0, "M"): 0.6, (0, "A"): 0.2, (1, "L"): 0.4, (1, "M"): 0.5, (1, "A"): 0.5}),
        "reliability",
    )
    assert scores.loc[0, "L"] == pytest.approx(0.3) and scores.loc[1, "A"] == pytest.approx(0.5)
    below = compare_methods(scores, ["L"], ["M"])
    assert below["verdict"] == "not reproduced" and below["standing"] == "L scored below M (in each of seeds 0 and 1)"
    mixed = compare_methods(scores, ["L"], ["A"])  # above in seed 0, below in seed 1
    assert mixed["verdict"] == "not separated" and "neither above nor below A" in mixed["standing"]
    assert compare_methods(scores, ["M"], ["L"])["verdict"] == "reproduced"
    assert (
        compare_methods(scores, ["L"], ["M", "A"])["standing"]
        == "L scored below M and neither above nor below A (in each of seeds 0 and 1)"
    )
    assert compare_methods(scores, ["L"], ["FT"]) == {
        "verdict": "not judged",
        "standing": "no finished run of FT",
        "seeds": "none",
    }
    assert compare_methods(scores.loc[[0]], ["L"], ["A"])["standing"] == "L scored above A (one seed: 0)"
    assert mean_and_interval(scores, "L") == "0.35 ± 0.64"  # t(1) = 12.71 times the standard error 0.05
    assert mean_and_interval(scores.loc[[0]], "L") == "0.30" and mean_and_interval(scores, "FT") == "not run"
    assert score_range(scores, ["M", "A"]) == "from 0.35 (A) to 0.55 (M)"  # means over the two seeds
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
    (tmp_path / "code.py").write_text("x = 2\n")
    assert git_dirty(tmp_path, exclude=("results",)) is True


def test_seeds_are_named_per_baseline_when_the_pairs_ran_different_seeds():
    from langedit_mini.study.results import compare_methods, seed_scores

    scores = seed_scores(
        _final_scores({(0, "L"): 0.3, (0, "M"): 0.6, (0, "A"): 0.2, (1, "L"): 0.4, (1, "A"): 0.5}), "reliability"
    )
    result = compare_methods(scores, ["L"], ["M", "A"])
    assert result["standing"] == "L scored below M (seed 0) and neither above nor below A (seeds 0 and 1)"
    assert result["verdict"] == "not reproduced" and result["seeds"] == "0 and 1"
