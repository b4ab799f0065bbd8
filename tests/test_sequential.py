"""Sequential runs: forgetting matrix, language interference, and resuming a killed run exactly."""

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch

from langedit_mini.data.datasets import load_pocket
from langedit_mini.data.schedules import build_schedule
from langedit_mini.editing import EditingSession
from langedit_mini.editing.defaults import default_config
from langedit_mini.model.statistics import key_second_moments
from langedit_mini.pocket import POCKET_EDIT_LAYERS, covariance_texts, load_pocket_model
from langedit_mini.study.sequential import forgetting_matrix, language_interference, run_schedule, write_forget

REQUESTS, _ = load_pocket()
SCHEDULE = dict(schedule="delta", languages=("en", "de", "fr"), edits_per_language=3, batch_size=3, seed=2)


@pytest.fixture(scope="module")
def pocket(tmp_path_factory):
    torch.set_num_threads(2)
    cache = tmp_path_factory.mktemp("stats")
    model, tokenizer = load_pocket_model()
    statistics = key_second_moments(
        model, tokenizer, covariance_texts(), list(POCKET_EDIT_LAYERS), cache_dir=cache, progress=False
    )
    return model, tokenizer, statistics, cache


def schedule():
    arguments = dict(SCHEDULE)
    return build_schedule(REQUESTS, arguments.pop("schedule"), arguments.pop("languages"), **arguments)


@pytest.fixture(scope="module")
def uninterrupted(pocket):
    model, tokenizer, statistics, _ = pocket
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    results = run_schedule(session, schedule())
    return session, results


def test_every_edit_so_far_is_scored_after_every_batch(uninterrupted):
    _, results = uninterrupted
    reliability = results[results.metric == "reliability"]
    assert reliability.groupby("after_batch").size().tolist() == [3, 6, 9]
    assert set(zip(reliability.after_batch, reliability.batch)) == {(t, b) for t in range(3) for b in range(t + 1)}
    matrix = forgetting_matrix(results)
    assert matrix.shape == (3, 3)
    assert matrix.isna().values.sum() == 3  # the upper triangle: edits scored before they were made
    assert (matrix.values.diagonal() >= 0.9).all(), matrix  # each batch works when it is made
    exact = forgetting_matrix(results, value="exact_match")
    assert ((exact.fillna(0) <= 1) & (exact.fillna(0) >= 0)).all().all()


def test_written_scores_each_batch_right_after_its_write_and_splits_losses(pocket, uninterrupted):
    model, tokenizer, statistics, _ = pocket
    _, full = uninterrupted
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    results = run_schedule(session, schedule(), evaluate_every=5, written=True)
    reliability = results[results.metric == "reliability"]
    # batches 0 and 1 are scored alone right after their write; after the last, every edit
    assert reliability.groupby("after_batch").size().tolist() == [3, 3, 9]
    assert (
        reliability[reliability.after_batch < 2].batch == reliability[reliability.after_batch < 2].after_batch
    ).all()
    # the same numbers as the run that scores everything after every batch
    mine = reliability.set_index(["after_batch", "fact_id", "lang"]).teacher_forced
    theirs = full[full.metric == "reliability"].set_index(["after_batch", "fact_id", "lang"]).teacher_forced
    assert (mine - theirs.reindex(mine.index)).abs().max() < 1e-6
    split = write_forget(results).iloc[0]
    assert split.edits == 9
    assert split.kept + split.forgotten + split.never_written == pytest.approx(1.0)
    assert split.lost == pytest.approx(split.written - split.final)
    assert write_forget(full).iloc[0].written == pytest.approx(split.written)
    with pytest.raises(ValueError, match="right after their write"):
        write_forget(
            run_schedule(
                EditingSession(model, tokenizer, default_config("MEMIT"), statistics), schedule(), evaluate_every=5
            )
        )


def test_language_interference_has_a_cell_per_earlier_language(uninterrupted):
    _, results = uninterrupted
    table = language_interference(results, schedule())
    assert list(table.columns) == ["de", "fr"]  # batches that had earlier edits to disturb
    assert set(table.index) == {"en", "de"}  # fr came last: nothing after it
    assert table.notna().values.sum() == 3  # en after de; en and de after fr
    with pytest.raises(ValueError, match="metric 'portability'"):
        forgetting_matrix(results[results.metric != "portability"], metric="portability")


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys
    import torch
    import langedit_mini.editing.methods as methods
    from langedit_mini.editing import EditingSession
    from langedit_mini.data.datasets import load_pocket
    from langedit_mini.editing.defaults import default_config
    from langedit_mini.pocket import POCKET_EDIT_LAYERS, load_pocket_model
    from langedit_mini.pocket import covariance_texts
    from langedit_mini.data.schedules import build_schedule
    from langedit_mini.study.sequential import run_schedule
    from langedit_mini.model.statistics import key_second_moments

    torch.set_num_threads(2)
    calls = []
    compute = methods.compute_target_values
    def killing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # in the middle of the third batch: nothing of it is written yet
            os.kill(os.getpid(), signal.SIGKILL)
        return compute(*args, **kwargs)
    methods.compute_target_values = killing
    model, tokenizer = load_pocket_model()
    statistics = key_second_moments(model, tokenizer, covariance_texts(), list(POCKET_EDIT_LAYERS),
                                    cache_dir=sys.argv[2], progress=False)
    assert all(m.from_cache for m in statistics.values())
    requests, _ = load_pocket()
    schedule = build_schedule(requests, {schedule!r}, {languages!r}, edits_per_language={edits_per_language},
                              batch_size={batch_size}, seed={seed})
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    run_schedule(session, schedule, record_dir=sys.argv[1])
""").format(**SCHEDULE)


def test_a_killed_run_resumes_to_the_same_weights_and_metrics(pocket, uninterrupted, tmp_path):
    model, tokenizer, statistics, cache = pocket
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    records = tmp_path / "records"
    killed = subprocess.run(
        [sys.executable, str(script), str(records), str(cache)],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": os.getcwd()},
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert sorted(p.name for p in records.iterdir()) == [
        "batch_000.safetensors",
        "batch_001.safetensors",
        "evaluation_000.csv",
        "evaluation_001.csv",
        "manifest.json",
    ]

    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    resumed = run_schedule(session, schedule(), record_dir=records)
    reference_session, reference_results = uninterrupted
    for name, parameter in reference_session.model.named_parameters():
        assert torch.equal(parameter, dict(session.model.named_parameters())[name]), name
    assert session.capacity_left == reference_session.capacity_left
    columns = ["after_batch", "batch", "fact_id", "lang", "metric", "teacher_forced", "exact_match"]
    pd.testing.assert_frame_equal(
        resumed[columns].reset_index(drop=True), reference_results[columns].reset_index(drop=True), check_dtype=False
    )


def test_resuming_with_another_configuration_is_refused(pocket, tmp_path):
    model, tokenizer, statistics, _ = pocket
    session = EditingSession(model, tokenizer, default_config("LangEdit-exact"), statistics)
    run_schedule(session, schedule(), record_dir=tmp_path, stop_after=1)
    assert len(session.records) == 1
    other = EditingSession(model, tokenizer, default_config("LangEdit-exact", alpha=3.0), statistics)
    with pytest.raises(ValueError, match="different config"):
        run_schedule(other, schedule(), record_dir=tmp_path)


def test_study_parts_of_one_schedule_combine_and_keep_the_unedited_probes_once():
    from langedit_mini.study.experiment import StudyResult, combine_studies

    requests, _ = load_pocket(languages=["en", "de"])
    plan = build_schedule(requests, "delta", ["en", "de"], edits_per_language=2, batch_size=2, seed=0)

    def part(method, plan=plan):
        probes = pd.DataFrame({"method": ["unedited", method], "after_batch": [-1, 1], "value": [0.5, 0.4]})
        rows = pd.DataFrame({"method": [method], "seed": [0]})
        return StudyResult(rows, probes, rows, rows, {0: plan})

    study = combine_studies([part("MEMIT"), part("LangEdit-exact")])
    assert list(study.evaluations.method) == ["MEMIT", "LangEdit-exact"]
    assert list(study.probes.method) == ["unedited", "MEMIT", "LangEdit-exact"]
    other = build_schedule(requests, "delta", ["en", "de"], edits_per_language=2, batch_size=2, seed=1)
    with pytest.raises(ValueError, match="ran different schedules"):
        combine_studies([part("MEMIT"), part("AlphaEdit", other)])
    with pytest.raises(ValueError, match="no study parts"):
        combine_studies([])


def test_the_gap_between_two_methods_over_settings_and_its_verdict():
    from langedit_mini.study.readings import method_gap

    index = pd.MultiIndex.from_product(
        [["base", "batch 3"], ["AlphaEdit", "LangEdit-exact"]], names=["setting", "method"]
    )
    scores = pd.DataFrame({"reliability": [0.90, 0.89, 0.80, 0.85], "locality": [1.0, 1.0, 0.9, 0.9]}, index=index)
    result = method_gap(scores, "AlphaEdit", "LangEdit-exact")
    assert result["largest"] == pytest.approx(0.05) and "differ by more than 0.02" in result["verdict"]
    assert method_gap(scores, "AlphaEdit", "LangEdit-exact", tolerance=0.1)["verdict"].endswith("(within 0.1)")
    missing = method_gap(scores, "AlphaEdit", "MEMIT")
    assert missing["gap"] is None and "not both in `methods`" in missing["verdict"]
