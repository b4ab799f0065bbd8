"""The density study's plan and readers, and the equal-budget tuning's choice."""

import math

import pandas as pd
import pytest
import torch

from langedit_mini.data.languages import LANGUAGES
from langedit_mini.study.density import PAPER_DENSITY, density, density_plan, grid_for
from langedit_mini.study.experiment import StudyPlan
from langedit_mini.study.tuning import GRID_SIZE, GRIDS, STAGE_1, choose, config_name, grid_edges, objective, tune


def test_the_grid_spans_the_regimes_and_keeps_the_papers_batch_ratio():
    grid = grid_for(1024)  # the pocket model's d_k
    assert grid["edits_per_language"] == (7, 14, 28, 49, 77, 98, 140) and grid["paper"] == 28
    assert grid_for(1536)["batch_size"] == 11 and grid_for(1536)["paper"] == 44  # SmolLM2: 264 edits, 0.172
    densities = [density(e, grid["d_k"]) for e in grid["edits_per_language"]]
    assert len(densities) >= 7 and densities == sorted(densities)
    assert densities[0] <= 0.05 and densities[-1] >= 0.8
    # the paper's density and the old full-scale study's 0.59 are on the grid (to the grid's resolution)
    assert abs(density(grid["paper"], grid["d_k"]) - PAPER_DENSITY) < 0.01
    assert min(abs(d - 600 / 1024) for d in densities) < 0.02
    # every batch has the size the paper's batch-to-d_k ratio gives, and fills whole language blocks
    assert grid["batch_size"] == round(100 * grid["d_k"] / 14336)
    assert all(e % grid["batch_size"] == 0 for e in grid["edits_per_language"])


def test_the_plan_runs_the_papers_density_first_with_every_seed():
    plan = density_plan(grid_for(1024), seeds=[0, 1, 2])
    assert [step["point"] for step in plan[:2]] == ["e028", "e028-mt"]
    assert all(step["seeds"] == [0, 1, 2] and step["plan"].evaluate_every == 1 for step in plan[:2])
    seed0 = [step for step in plan[2:] if step["seeds"] == [0]]
    later = [step for step in plan[2:] if step["seeds"] == [1, 2]]
    assert (
        [s["point"] for s in seed0] == [s["point"] for s in later] == ["e007", "e014", "e049", "e077", "e098", "e140"]
    )
    assert plan.index(seed0[-1]) < plan.index(later[0])  # seed 0 everywhere before the other seeds
    # about eight full evaluations per run away from the paper's point, the probes after the last batch
    e140 = seed0[-1]
    assert e140["plan"].evaluate_every == 120 // 8 and e140["plan"].probe_every == 120
    (step,) = density_plan(grid_for(1024), points=["e049"], seeds=[3])
    assert step["point"] == "e049" and step["schedule"] == "delta" and step["seeds"] == [3]
    assert step["plan"] == StudyPlan(
        languages=LANGUAGES,
        edits_per_language=49,
        batch_size=7,
        facts="parallel",
        evaluate_every=5,
        probe_every=42,
        probe_limit=50,
    )
    with pytest.raises(ValueError, match="unknown points \\['e050'\\]"):
        density_plan(grid_for(1024), points=["e050"])
    with pytest.raises(ValueError, match="d_k must be a positive integer"):
        grid_for(0)


def test_a_step_records_the_parameters_of_the_committed_runs():
    """A step's plan, recorded by the runner, equals what the committed runs recorded (so they are not redone)."""
    from pathlib import Path

    from langedit_mini.study import store
    from langedit_mini.study.runner import study_parameters
    from langedit_mini.study.testbeds import Testbed

    testbed = Testbed("pocket", None, None, "pocket", "pocket", [], "", None, "langedit_mini.pocket")
    results = Path(__file__).resolve().parents[1] / "results" / "density" / "pocket"
    for step in density_plan(grid_for(1024), points=["e028-mt", "e140"], seeds=[1]):
        recorded = store.read_part_record(results / step["point"], "seed1-MEMIT")
        assert recorded is not None, step["point"]
        assert study_parameters(testbed, step["plan"], tuning_facts=200) == recorded["parameters"]


def test_every_method_gets_the_same_tuning_budget():
    assert set(GRIDS) == {"FT", "MEMIT", "AlphaEdit", "LangEdit-published", "LangEdit-exact"}
    assert all(len(grid) == GRID_SIZE for grid in GRIDS.values())
    assert all(len({config_name(c) for c in grid}) == GRID_SIZE for grid in GRIDS.values())  # distinct


def test_a_choice_at_an_edge_of_its_grid_is_named_per_setting():
    assert grid_edges({"mom2_weight": 10000.0}, STAGE_1["MEMIT"]) == ["mom2_weight 10000, the largest tried"]
    assert grid_edges({"mom2_weight": 3.0}, STAGE_1["MEMIT"]) == ["mom2_weight 3, the smallest tried"]
    assert grid_edges({"mom2_weight": 100.0}, STAGE_1["MEMIT"]) == []
    grid = [{"a": a, "b": b} for a in (1.0, 2.0, 3.0) for b in (10.0, 20.0, 30.0)]
    assert grid_edges({"a": 2.0, "b": 20.0}, grid) == []  # the middle of both settings
    assert grid_edges({"a": 2.0, "b": 30.0}, grid) == ["b 30, the largest tried"]  # not the list's last entry
    assert grid_edges({"a": 1.0, "b": 30.0}, grid) == ["a 1, the smallest tried", "b 30, the largest tried"]
    assert grid_edges({"a": 1.0}, [{"a": 1.0}]) == []  # one value tried: no edge to speak of


def test_the_choice_is_the_best_objective_of_a_complete_grid():
    rows = []
    for index, config in enumerate(GRIDS["MEMIT"]):
        score = 0.5 + 0.01 * index if index != 3 else 0.99
        rows.append(
            {
                "method": "MEMIT",
                "config": config_name(config),
                "reliability TF": score,
                "generality TF": score,
                "locality TF": score,
            }
        )
    runs = pd.DataFrame(rows)
    runs["objective"] = [objective(row) for _, row in runs.iterrows()]
    assert math.isclose(runs.objective[3], 0.99)
    chosen = choose(runs)
    assert chosen == {"MEMIT": {"config": GRIDS["MEMIT"][3], "objective": pytest.approx(0.99), "runs": GRID_SIZE}}
    with pytest.raises(ValueError, match=f"MEMIT: 1 of its {GRID_SIZE} configurations not run"):
        choose(runs.iloc[:-1])
    first_stage = choose(runs, STAGE_1)  # stage 1's 8 alone: the best among them, stage 2's rows left out
    assert first_stage["MEMIT"]["config"] == STAGE_1["MEMIT"][3] and first_stage["MEMIT"]["runs"] == 8
    runs.loc[3, "objective"] = 0.0
    assert choose(runs, STAGE_1)["MEMIT"]["config"] == STAGE_1["MEMIT"][7]  # the best of stage 1 once 3 falls
    assert choose(runs)["MEMIT"]["config"] == GRIDS["MEMIT"][-1]  # over both stages, stage 2's last
    with pytest.raises(ValueError, match="stage must be one of"):
        tune(None, "unused", None, tuning_facts=1, stage=3)


def test_the_choice_is_compared_with_its_runner_up_paired_by_request():
    from langedit_mini.study.tuning import runner_up_margin

    names = [config_name(c) for c in STAGE_1["MEMIT"]]
    objectives = [0.5, 0.7, 0.6] + [0.1] * 5  # chosen: names[1], runner-up: names[2]
    runs = pd.DataFrame({"method": "MEMIT", "config": names, "objective": objectives})
    rows = []
    for name, level in zip(names, objectives):
        for fact in range(4):
            for metric in ("reliability", "generality", "locality"):
                # per request the chosen leads the runner-up by 0.1 + 0.02 * fact: mean 0.13
                rows.append(
                    {"method": "MEMIT", "config": name, "lang": "en", "fact_id": fact, "metric": metric}
                    | {"teacher_forced": level + (0.02 * fact if name == names[1] else 0.0)}
                )
    scores = pd.DataFrame(rows)
    choice = {"config": STAGE_1["MEMIT"][1]}
    margin = runner_up_margin(runs, scores, "MEMIT", choice, STAGE_1)
    assert margin["runner_up"] == names[2] and margin["pairs"] == 4
    assert margin["mean"] == pytest.approx(0.13) and 0 < margin["half_width"] < 0.1
    # rows made before per-request scores were kept: no margin, not a made-up one
    assert runner_up_margin(runs, scores[scores.config != names[2]], "MEMIT", choice, STAGE_1) is None
    # requests that do not match cannot be paired
    with pytest.raises(ValueError, match="cannot be paired"):
        unmatched = scores[(scores.config != names[1]) | (scores.fact_id != 0)]  # fact 0 not scored when chosen
        runner_up_margin(runs, unmatched, "MEMIT", choice, STAGE_1)


def _fake_unedited(testbed, requests, *, plan, seed=0):
    """What a model-less testbed's tuning scores as its unedited model: 0.5 on every request and metric."""
    from langedit_mini.study import tuning

    scores = pd.DataFrame(
        [
            {"method": tuning.UNEDITED, "config": tuning.UNEDITED, "lang": r.lang, "fact_id": r.fact_id}
            | {"batch": 0, "metric": m, "teacher_forced": 0.5, "exact_match": 0.0}
            for r in requests[: plan.edits_per_language]
            for m in tuning.OBJECTIVE_METRICS
        ]
    )
    row = {"method": tuning.UNEDITED, "config": tuning.UNEDITED, "objective": 0.5, "seconds": 1.0}
    return row | {f"{m} TF": 0.5 for m in tuning.OBJECTIVE_METRICS}, scores


def _towns(count: int):
    """A model-less pocket testbed of ``count`` English facts and a plan of 2 edits in batches of 2: enough for a
    tuning whose runs are replaced by a fake ``tuning_run``."""
    from langedit_mini.data.datasets import EditRequest
    from langedit_mini.study.testbeds import Testbed

    requests = [
        EditRequest(prompt="Where is {}?", subject=f"town {i}", target="north", lang="en", fact_id=f"f{i}")
        for i in range(count)
    ]
    testbed = Testbed("pocket", None, None, "pocket", "pocket", requests, "", None, "langedit_mini.pocket")
    return testbed, StudyPlan(languages=["en"], edits_per_language=2, batch_size=2, facts="parallel")


def test_a_resumed_tuning_replaces_scores_left_without_their_row(tmp_path, monkeypatch):
    """A run stopped between writing a configuration's scores and its row leaves scores without a row: the
    rerun of that configuration replaces them, and every row has its requests' scores exactly once."""
    from langedit_mini.study import store, tuning

    def fake_run(testbed, requests, method, config, *, plan, seed=0):
        name = config_name(config)
        row = {"method": method, "config": name, "objective": 0.5} | {f"{m} TF": 0.5 for m in tuning.OBJECTIVE_METRICS}
        scores = pd.DataFrame(
            [
                {"method": method, "config": name, "lang": r.lang, "fact_id": r.fact_id, "batch": 0, "metric": m}
                | {"teacher_forced": 0.5, "exact_match": 0.0}
                for r in requests
                for m in tuning.OBJECTIVE_METRICS
            ]
        )
        return row | {"seconds": 1.0}, scores

    monkeypatch.setattr(tuning, "tuning_run", fake_run)
    monkeypatch.setattr(tuning, "unedited_run", _fake_unedited)
    testbed, plan = _towns(6)
    first = config_name(STAGE_1["MEMIT"][0])
    stale = pd.DataFrame([{"method": "MEMIT", "config": first, "lang": "en", "fact_id": "old", "teacher_forced": 0.0}])
    store.write_tuning_scores(tmp_path, stale)  # scores written, then stopped before its row
    tune(testbed, tmp_path, plan, tuning_facts=2, methods=["MEMIT"], configs=2, log=lambda *_: None)
    runs, scores = store.read_tuning_runs(tmp_path), store.read_tuning_scores(tmp_path)
    assert runs.config.tolist() == [first, config_name(STAGE_1["MEMIT"][1])]
    assert "old" not in set(scores.fact_id)  # the stale scores are gone
    assert scores.groupby("config").size().to_dict() == {name: 2 * 3 for name in runs.config}  # 2 facts, 3 metrics
    assert set(scores.package_hash) == set(runs.package_hash)


def test_a_tuning_of_other_methods_keeps_the_choices_made_before_at_the_same_point(tmp_path, monkeypatch):
    """Methods tuned one invocation after another (a real LLM's baselines first, then FT and LangEdit): the record
    keeps every method's choice and grid, each earlier choice naming the commit that made it; a tuning at
    another point replaces the record and says whose choices went. Applied, the choices keep the runs of a method
    whose settings did not change current."""
    import json

    from langedit_mini.study import store, tuning

    def fake_run(testbed, requests, method, config, *, plan, seed=0):
        name = config_name(config)
        value = 0.9 if config == STAGE_1[method][1] else 0.5
        row = {"method": method, "config": name, "objective": value}
        row |= {f"{m} TF": value for m in tuning.OBJECTIVE_METRICS}
        scores = pd.DataFrame(
            [
                {"method": method, "config": name, "lang": r.lang, "fact_id": r.fact_id, "batch": 0, "metric": m}
                | {"teacher_forced": value, "exact_match": 0.0}
                for r in requests
                for m in tuning.OBJECTIVE_METRICS
            ]
        )
        return row | {"seconds": 1.0}, scores

    monkeypatch.setattr(tuning, "tuning_run", fake_run)
    monkeypatch.setattr(tuning, "unedited_run", _fake_unedited)
    testbed, plan = _towns(6)
    quiet = {"tuning_facts": 2, "stage": 1}
    tune(testbed, tmp_path, plan, methods=["AlphaEdit"], log=lambda *_: None, **quiet)
    first = store.read_tuning(tmp_path)["record"]
    tune(testbed, tmp_path, plan, methods=["FT"], log=lambda *_: None, **quiet)
    record = store.read_tuning(tmp_path)["record"]
    assert list(record["chosen"]) == ["FT", "AlphaEdit"] and list(record["grids"]) == ["FT", "AlphaEdit"]
    assert record["chosen"]["AlphaEdit"]["config"] == STAGE_1["AlphaEdit"][1]
    assert record["chosen"]["AlphaEdit"]["kept_from"] == first["commit"]
    assert "kept_from" not in record["chosen"]["FT"]
    # the record's time is every recorded row's (1 s each) and the unedited scoring's (1 s), over both invocations
    rows = len(STAGE_1["FT"]) + len(STAGE_1["AlphaEdit"])
    assert first["wall_s"] == len(STAGE_1["AlphaEdit"]) + 1 and record["wall_s"] == rows + 1
    assert record["untimed_rows"] == 0 and record["invocation_s"] >= 0
    said = []
    other = StudyPlan(languages=["en"], edits_per_language=2, batch_size=1, facts="parallel")
    tune(testbed, tmp_path / "other", other, methods=["FT"], log=said.append, **quiet)  # a fresh folder: nothing
    assert not said[-1].startswith("tuning.json")
    store.write_json(tmp_path / "other" / "tuning.json", record)  # another point's record beside its rows
    tune(testbed, tmp_path / "other", other, methods=["FT"], log=said.append, **quiet)
    assert "tuning.json tuned AlphaEdit at another point or stage" in "\n".join(said)
    assert list(store.read_tuning(tmp_path / "other")["record"]["chosen"]) == ["FT"]
    # applied: FT's and AlphaEdit's sections written; a MEMIT run of the testbed reads neither and stays current
    hparams, run = tmp_path / "pocket.json", tmp_path / "density" / "pocket" / "e001" / "parts" / "seed0-MEMIT"
    hparams.write_text(json.dumps({"model": "pocket", "note": "Start.", "layers": [1], "settings": {"alpha": 1.0}}))
    run.mkdir(parents=True)
    store.write_json(run / "part.json", {"method": "MEMIT", "package_hash": "a"})
    hashes = iter(["a", "b"])
    testbed.hparams, testbed.current_hash = str(hparams), lambda: next(hashes)
    monkeypatch.setattr(tuning, "EQUIVALENCES", tmp_path / "equivalences.json")
    tune(testbed, tmp_path, plan, methods=["FT"], apply=True, runs_root=tmp_path / "density", log=said.append, **quiet)
    assert set(json.loads(hparams.read_text())["methods"]) == {"FT", "AlphaEdit"}
    assert store.read_tuning(tmp_path)["record"]["wall_s"] == rows + 1  # an apply that ran nothing keeps the time
    kept = json.loads((tmp_path / "equivalences.json").read_text())["a"]
    assert kept["equivalent_to"] == "b" and kept["evidence"][0]["runs"] == ["e001/seed0-MEMIT"]


def test_rescoring_reruns_a_choice_and_its_runner_up_made_without_scores(tmp_path, monkeypatch):
    """Rows made before the tuning kept per-request scores: ``rescoring`` reruns the choice and the runner-up
    (no other row), adds their scores, and the choice's lead is paired; a rerun that does not reproduce its
    row's objective is refused."""
    from langedit_mini.study import store, tuning

    names = [config_name(c) for c in STAGE_1["MEMIT"]]
    objectives = dict(zip(names, [0.60, 0.75, 0.70, 0.50, 0.50, 0.50, 0.50, 0.50]))
    rerun = []

    def fake_run(testbed, requests, method, config, *, plan, seed=0):
        name = config_name(config)
        rerun.append(name)
        rows = [
            {"method": method, "config": name, "lang": r.lang, "fact_id": r.fact_id, "batch": 0, "metric": m}
            | {"teacher_forced": objectives[name] + 0.01 * index, "exact_match": 0.0}
            for index, r in enumerate(requests)
            for m in tuning.OBJECTIVE_METRICS
        ]
        return {"method": method, "config": name, "objective": objectives[name]}, pd.DataFrame(rows)

    monkeypatch.setattr(tuning, "tuning_run", fake_run)
    monkeypatch.setattr(tuning, "unedited_run", _fake_unedited)
    testbed, plan = _towns(8)
    runs = pd.DataFrame({"method": "MEMIT", "config": names, "objective": list(objectives.values())})
    store.write_tuning_runs(tmp_path, runs.assign(package_hash="older"))
    kwargs = {"tuning_facts": 3, "methods": ["MEMIT"], "stage": 1, "log": lambda *_: None}
    info = tune(testbed, tmp_path, plan, **kwargs)
    assert rerun == [] and info["chosen"]["MEMIT"]["margin"] is None  # not asked: nothing rerun, nothing made up
    info = tune(testbed, tmp_path, plan, rescoring=True, **kwargs)
    assert rerun == [names[1], names[2]]  # the choice, then the runner-up
    margin = info["chosen"]["MEMIT"]["margin"]
    assert margin["runner_up"] == names[2] and margin["pairs"] == 3 and margin["mean"] == pytest.approx(0.05)
    assert len(store.read_tuning_runs(tmp_path)) == 8  # the rows stay as they were
    tune(testbed, tmp_path, plan, rescoring=True, **kwargs)
    assert rerun == [names[1], names[2]]  # scored now: not rerun again
    (tmp_path / "scores.csv").unlink()
    objectives[names[1]] = 0.76  # today's code would not reproduce the row
    with pytest.raises(ValueError, match="is not its row's 0.750000"):
        tune(testbed, tmp_path, plan, rescoring=True, **kwargs)


def test_applying_one_stage_for_some_methods_keeps_the_others_settings(tmp_path):
    import json

    from langedit_mini.editing.defaults import default_config
    from langedit_mini.study.tuning import apply_choices

    path = tmp_path / "model.json"
    start = {"model": "m", "note": "Starting values.", "layers": [1, 2], "settings": {"tau": 0.02, "alpha": 10.0}}
    path.write_text(json.dumps(start | {"methods": {"FT": {"learning_rate": 1e-3, "norm_constraint": 0.05}}}))
    chosen = {
        "MEMIT": {"config": STAGE_1["MEMIT"][2], "objective": 0.9, "runs": 8},
        "AlphaEdit": {"config": STAGE_1["AlphaEdit"][5], "objective": 0.8, "runs": 8},
    }
    apply_choices(str(path), chosen, tmp_path / "tuning", stage=1)
    data = json.loads(path.read_text())
    assert data["methods"]["FT"] == {"learning_rate": 1e-3, "norm_constraint": 0.05}  # not erased
    assert data["methods"]["MEMIT"] == STAGE_1["MEMIT"][2] and data["methods"]["AlphaEdit"] == STAGE_1["AlphaEdit"][5]
    assert data["note"].startswith("Starting values. Per-method settings (methods): FT, MEMIT, AlphaEdit tuned")
    assert "(8 configurations each, stage 1 of study.tuning)" in data["note"]
    alpha = default_config("AlphaEdit", str(path))  # the tuned cut replaces the file's absolute tau
    assert alpha.settings.leftover_fraction == STAGE_1["AlphaEdit"][5]["leftover_fraction"]
    assert alpha.settings.tau is None
    assert default_config("MEMIT", str(path)).settings.mom2_weight == STAGE_1["MEMIT"][2]["mom2_weight"]
    apply_choices(str(path), {"MEMIT": chosen["MEMIT"]}, tmp_path / "tuning", stage=2)  # applied again: one note
    assert json.loads(path.read_text())["note"].count("Per-method settings") == 1
    assert "(12 configurations each, stage 2" in json.loads(path.read_text())["note"]


def test_applying_choices_keeps_the_runs_of_methods_whose_settings_it_left_alone(tmp_path):
    import json

    from langedit_mini.study.provenance import is_current, read_equivalences
    from langedit_mini.study.tuning import apply_choices, runs_kept_by_apply

    path = tmp_path / "model.json"
    start = {"model": "m", "note": "Starting values.", "layers": [1, 2], "settings": {"tau": 0.02, "alpha": 10.0}}
    path.write_text(json.dumps(start | {"methods": {"MEMIT": {"mom2_weight": 100.0}}}))
    runs = tmp_path / "density"
    for name, method, made_by in (("seed0-MEMIT", "MEMIT", "old"), ("seed0-FT", "FT", "older")):
        (runs / "e044" / "parts" / name).mkdir(parents=True)
        record = {"seed": 0, "method": method, "package_hash": made_by}
        (runs / "e044" / "parts" / name / "part.json").write_text(json.dumps(record))
    equivalences, said = tmp_path / "equivalences.json", []
    before = path.read_text()
    chosen = {"LangEdit-exact": {"config": STAGE_1["LangEdit-exact"][0], "objective": 0.6, "runs": 8}}
    apply_choices(str(path), chosen, tmp_path / "tuning", stage=1)
    kept = runs_kept_by_apply(before, path, "old", "new", runs_root=runs, equivalences=equivalences, log=said.append)
    assert kept["evidence"][0]["runs"] == ["e044/seed0-MEMIT"]  # FT's run was stale already: not carried over
    assert kept["evidence"][0]["sections changed"] == ["LangEdit-exact"]
    assert is_current("old", "new", read_equivalences(equivalences)) and "recorded as equivalent" in said[-1]
    before = path.read_text()  # now MEMIT's own section changes: its run goes stale, nothing is recorded
    apply_choices(
        str(path), {"MEMIT": {"config": {"mom2_weight": 3.0}, "objective": 0.7, "runs": 8}}, tmp_path, stage=1
    )
    assert (
        runs_kept_by_apply(before, path, "new", "newer", runs_root=runs, equivalences=equivalences, log=said.append)
        is None
    )
    assert "e044/seed0-MEMIT" in said[-1] and "stale" in said[-1]
    assert not is_current("old", "newer", read_equivalences(equivalences))
    assert runs_kept_by_apply(before, path, "x", "x", runs_root=runs, equivalences=equivalences) is None  # same hash


def test_the_readers_summarise_a_density_study_on_disk(toy_density):
    from langedit_mini.study.density_chapter import read_points
    from langedit_mini.study.intervals import with_intervals
    from langedit_mini.study.readings import (
        final_by_run,
        general_ability_by_run,
        null_space_left,
        runs_on_disk,
        write_forget_by_run,
    )
    from langedit_mini.study.verdicts import paired_verdict

    points = read_points(toy_density, 1024)
    assert list(points) == ["e001", "e002"]
    assert points["e002"]["density"] == pytest.approx(4 / 1024) and points["e002"]["edits"] == 4
    finals = final_by_run(points)
    reliability = finals[finals.metric == "reliability"]
    assert len(reliability) == 2 * 2 * 2 and reliability.teacher_forced.between(0, 1).all()
    summary = with_intervals(reliability, ["point", "method"], "teacher_forced")
    assert (summary.seeds == 2).all() and summary["half"].notna().all()
    decomposition = write_forget_by_run(points)
    assert len(decomposition) == 8 and {"written", "final", "forgotten", "never_written"} <= set(decomposition)
    assert (decomposition.kept + decomposition.forgotten + decomposition.never_written).round(9).eq(1).all()
    ability = general_ability_by_run(points)
    assert len(ability) == 8 and ability["relative ability"].between(0, 2).all()
    left = null_space_left(points)
    assert set(left.method) == {"LangEdit-exact"}  # MEMIT has no null space
    by_point = left.groupby("point")["null space left"].mean()
    assert by_point["e002"] < by_point["e001"]  # every committed key took a dimension
    on_disk = runs_on_disk(points, lambda run_hash: True)
    assert len(on_disk) == 4 and (on_disk.stale == 0).all() and set(on_disk.seeds) == {"0, 1"}
    assert (runs_on_disk(points, lambda run_hash: False).stale == 2).all()  # both seeds made by other code
    # runs that carry a `current` column (ModelStudy.runs) are counted from it, not asked again
    marked = {
        name: point | {"runs": point["runs"].assign(current=point["runs"].seed == 0)} for name, point in points.items()
    }
    assert (runs_on_disk(marked, lambda run_hash: True).stale == 1).all()
    verdict = paired_verdict(
        finals[finals.point == "e002"], "reliability", methods=["LangEdit-exact"], baselines=["MEMIT"]
    )
    assert verdict["verdict"] in {"reproduced", "not reproduced", "not separated"} and verdict["seeds"] == 2
    untestable = paired_verdict(
        finals[finals.point == "e002"], "reliability", methods=["LangEdit-exact"], baselines=["MEMIT"], calibrated=False
    )
    assert untestable["verdict"] == "cannot be tested on a CPU testbed" and untestable["pairs"] == verdict["pairs"]
    missing = paired_verdict(finals[finals.point == "e002"], "reliability")
    assert missing["verdict"].startswith("not judged (no run of LangEdit-published")


def test_the_gate_table_reads_a_calibration_record_and_the_sequential_gate():
    from langedit_mini.study.claims import Claim
    from langedit_mini.study.verdicts import gate_table

    record = {
        "gates": {
            "G1": {"claims": [Claim("MEMIT writes a batch of 7: reliability (TF)", 0.97, 0.95, True).as_dict()]},
            "G3": {"claims": [Claim("peak inside the band", 0.0, 1.0, True).as_dict()]},
        }
    }
    rows = []
    for seed, (alpha, memit) in enumerate([(0.9, 0.7), (0.92, 0.71), (0.91, 0.69)]):
        for method, value in (("AlphaEdit", alpha), ("MEMIT", memit)):
            for metric in ("reliability", "locality"):
                rows.append({"method": method, "seed": seed, "metric": metric, "teacher_forced": value})
    table = gate_table(record, pd.DataFrame(rows), PAPER_DENSITY)
    assert list(table.gate) == ["G1", "G3", "G2", "G2"]
    assert table.holds.tolist() == [True, False, True, True]
    no_runs = gate_table(record, None, PAPER_DENSITY)
    assert no_runs.iloc[-1].gate == "G2" and not no_runs.iloc[-1].holds  # not run: not passed


def test_capacity_read_off_the_grid_stops_at_the_first_point_below_a_threshold():
    from langedit_mini.study.readings import holds_up_to

    rows = []
    for at, memit, alpha in ((0.1, 0.95, 0.99), (0.2, 0.85, 0.97), (0.4, 0.92, 0.7), (0.8, 0.4, 0.45)):
        for method, value in (("MEMIT", memit), ("AlphaEdit", alpha)):
            rows.append({"method": method, "density": at, "metric": "reliability", "teacher_forced": value})
    table = holds_up_to(pd.DataFrame(rows), thresholds=(0.9, 0.5))
    assert table.loc["MEMIT", ">= 0.9 up to"] == 0.1  # not 0.4: it fell below 0.9 at 0.2 already
    assert table.loc["AlphaEdit", ">= 0.9 up to"] == 0.2 and table.loc["AlphaEdit", ">= 0.5 up to"] == 0.4
    assert list(table.index) == ["MEMIT", "AlphaEdit"]  # the registry's order


@pytest.mark.slow
def test_the_tuning_recheck_reruns_rows_of_older_code_and_agrees(tmp_path):
    """``scripts/tune.py --recheck`` reruns the best row of each older code version; the pocket runs are
    deterministic, so today's code, unchanged, reproduces the objective it recorded."""
    from test_runner import load_script

    tune = load_script("tune")
    threads = ["--threads", str(torch.get_num_threads())]  # the script sets it: leave the suite's own
    small = ["--edits-per-language", "1", "--batch-size", "1", "--languages", "en", "de", "--tuning-facts", "20"]
    tune.main([*small, "--methods", "MEMIT", "--configs", "1", "--output", str(tmp_path), *threads])
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert len(runs) == 1 and runs.method.tolist() == ["MEMIT"]
    older = runs.assign(package_hash="older")
    newest = runs.assign(package_hash="newest", config="mom2_weight=1", objective=0.0)
    pd.concat([older, newest]).to_csv(tmp_path / "runs.csv", index=False)
    info_before = (tmp_path / "tuning.json").read_text()
    tune.main([*small, "--methods", "MEMIT", "--configs", "1", "--output", str(tmp_path), "--recheck", *threads])
    recheck = pd.read_csv(tmp_path / "recheck.csv")
    assert recheck["made by"].tolist() == ["older"]  # the last row's version is the reference, not rerun
    assert recheck["objective now"].iloc[0] == pytest.approx(runs.objective.iloc[0], abs=1e-9)
    assert (tmp_path / "tuning.json").read_text() == info_before  # the tuning's record stays as it was


def test_a_cell_is_the_mean_and_the_95_percent_half_width_over_seeds():
    from langedit_mini.study.intervals import format_interval, mean_cell

    seeds = [0.90, 0.92, 0.94]  # sd 0.02, t(2) = 4.303: half-width 0.0497
    assert mean_cell(seeds) == "0.920 ± 0.050"
    assert mean_cell(seeds, 2) == "0.92 ± 0.05"
    assert mean_cell(seeds[:1]) == "0.900"  # one seed: no interval
    assert mean_cell([]) == "not run"
    assert format_interval(0.021, 0.026, signed=True) == "+0.021 ± 0.026"


def test_the_order_at_each_density_and_where_one_method_falls_below_another_for_good():
    from langedit_mini.study.readings import below_from, order_by_density

    rows = []
    # AlphaEdit below MEMIT at 0.2, above at 0.4, below from 0.6 on: "for good" starts at 0.6, not 0.2
    for at, memit, alpha in ((0.1, 0.9, 0.95), (0.2, 0.9, 0.85), (0.4, 0.8, 0.82), (0.6, 0.7, 0.5), (0.8, 0.6, 0.3)):
        for seed, shift in ((0, 0.01), (1, -0.01)):
            for method, value in (("MEMIT", memit), ("AlphaEdit", alpha)):
                rows.append(
                    {
                        "method": method,
                        "density": at,
                        "seed": seed,
                        "metric": "reliability",
                        "teacher_forced": value + shift,
                    }
                )
    finals = pd.DataFrame(rows)
    assert below_from(finals, "AlphaEdit", "MEMIT") == 0.6
    assert below_from(finals, "MEMIT", "AlphaEdit") is None  # MEMIT is above at the densest point
    order = order_by_density(finals)
    assert list(order.order) == [
        "AlphaEdit > MEMIT",
        "MEMIT > AlphaEdit",
        "AlphaEdit > MEMIT",
        "MEMIT > AlphaEdit",
        "MEMIT > AlphaEdit",
    ]
    assert order.seeds.tolist() == [2] * 5 and order.loc[0, "AlphaEdit"] == 0.95
    with pytest.raises(ValueError, match="no final reliability scores for FT"):
        below_from(finals, "FT", "MEMIT")
    tied = pd.DataFrame(
        [
            {"method": "MEMIT", "density": 0.1, "metric": "reliability", "teacher_forced": 0.9001},
            {"method": "AlphaEdit", "density": 0.1, "metric": "reliability", "teacher_forced": 0.9003},
            {"method": "FT", "density": 0.1, "metric": "reliability", "teacher_forced": 0.95},
        ]
    )
    assert order_by_density(tied).order.tolist() == ["FT > AlphaEdit = MEMIT"]  # equal to three decimals


def test_paired_differences_by_density_read_which_points_separate():
    from langedit_mini.study.readings import densities_read, paired_by_density, paired_cell

    rows = []

    def add(at, method, seed, value, metric="reliability"):
        rows.append({"density": at, "method": method, "seed": seed, "metric": metric, "teacher_forced": value})

    # 0.1: AlphaEdit above MEMIT by 0.02 in every seed (interval 0); 0.2: below by 0.1 +- small noise;
    # 0.3: differences of opposite sign (not separated); 0.4: no MEMIT run; 0.5: one shared seed only
    for seed, noise in ((0, 0.0), (1, 0.01), (2, -0.01)):
        add(0.1, "MEMIT", seed, 0.9 + noise)
        add(0.1, "AlphaEdit", seed, 0.92 + noise)
        add(0.2, "MEMIT", seed, 0.8)
        add(0.2, "AlphaEdit", seed, 0.7 + noise)
        add(0.3, "MEMIT", seed, 0.7)
        add(0.3, "AlphaEdit", seed, 0.7 + 5 * noise)
        add(0.4, "AlphaEdit", seed, 0.6)
        add(0.1, "MEMIT", seed, 0.0, metric="locality")  # another metric is not mixed in
    add(0.5, "MEMIT", 0, 0.5)
    add(0.5, "AlphaEdit", 0, 0.4)
    add(0.5, "AlphaEdit", 1, 0.4)
    paired = paired_by_density(pd.DataFrame(rows), ["AlphaEdit"], "MEMIT")
    assert paired.reading.tolist() == ["above", "below", "not separated", "not run", "one seed"]
    assert paired.seeds.tolist() == [3, 3, 3, 0, 1]
    assert paired["mean"].iloc[0] == pytest.approx(0.02) and paired["half"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert paired["mean"].iloc[1] == pytest.approx(-0.1)
    assert densities_read(paired, "AlphaEdit", "below") == [0.2]
    assert densities_read(paired, "AlphaEdit", "above") == [0.1]
    cells = [paired_cell(row) for _, row in paired.iterrows()]
    assert cells[0] == "+0.020 ± 0.000 *" and cells[3] == "not run" and cells[4] == "-0.100"
    assert not cells[2].endswith("*")


def test_an_interval_that_touches_zero_does_not_separate():
    from langedit_mini.study.intervals import interval_reading

    assert interval_reading(0.1, 0.05, 3) == "above" and interval_reading(-0.1, 0.05, 3) == "below"
    assert interval_reading(0.1, 0.1, 3) == "not separated" and interval_reading(-0.1, 0.1, 3) == "not separated"
    assert interval_reading(0.5, 0.0, 1) == "one seed"


def test_the_density_chapter_checks_its_runs_against_the_testbeds_own_hash(toy_density, tmp_path):
    """The toy runs were made by today's pocket code: read as the pocket's (no hash given) nothing is stale; read
    against another testbed's hash (a real LLM's runs hash its loader and files too) every run is, and says so."""
    from langedit_mini.study.density import grid_for
    from langedit_mini.study.density_chapter import DensityResults, runs_reading

    def reading(current_hash):
        folders = dict(calibration=tmp_path, tuning=tmp_path / "tuning", depth=tmp_path, positions=tmp_path)
        results = DensityResults.load(
            "pocket", grid_for(1024), density=toy_density, current_hash=current_hash, **folders
        )
        return " ".join(str(part) for part in runs_reading(results).parts)

    assert "WARNING" not in reading(None)
    assert "WARNING: 8 runs were made by other editing code" in reading("0123456789abcdef")


def test_the_density_chapter_parses_todays_code_once_however_many_runs(toy_density, tmp_path, hash_work):
    """Hashing the package parses every module and reads the pocket weights (most of a second): checking each
    run on disk against today's hash does that work once (it once spent a minute of the book build on 120 runs)."""
    from langedit_mini.study import density_chapter
    from langedit_mini.study.density import grid_for
    from langedit_mini.study.provenance import (
        LARGE_FILE,
        POCKET_INPUTS,
        POCKET_LOADER,
        ROOT,
        STUDY_ENTRY,
        imported_modules,
    )

    folders = dict(calibration=tmp_path, tuning=tmp_path / "tuning", depth=tmp_path, positions=tmp_path)
    results = density_chapter.DensityResults.load("pocket", grid_for(1024), density=toy_density, **folders)
    reading = density_chapter.runs_reading(results)
    assert "8 runs" in " ".join(str(part) for part in reading.parts)
    assert 0 < hash_work.parsed <= len(imported_modules(STUDY_ENTRY, POCKET_LOADER))
    large = [name for name in POCKET_INPUTS if (ROOT / name).stat().st_size >= LARGE_FILE]
    assert len(large) == 4 and hash_work.read <= 4  # the pocket world's edits and probes, the two models' weights
