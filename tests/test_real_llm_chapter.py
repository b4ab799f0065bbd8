"""The readings of the chapter "Real LLMs on your CPU" (``study.real_llm_chapter``) on made-up committed results:
what they find in a trace, and what they say when a result is not there."""

import json

import matplotlib
import pandas as pd
import pytest

from langedit_mini.study import real_llm_chapter as chapter
from langedit_mini.study import store

matplotlib.use("Agg")


def _trace(folder, mlp_shares, window_shares, band, band_share, window):
    """A calibration folder with a trace summary: MLP and windowed shares at the subject's last token."""
    rows = [
        {"site": site, "position": "subject last", "layer": layer, "share_of_total": share}
        for site, shares in (("mlp", mlp_shares), ("mlp window", window_shares))
        for layer, share in enumerate(shares)
    ]
    rows.append({"site": "mlp band", "position": "subject last", "layer": -1, "share_of_total": band_share})
    summary = pd.DataFrame(rows).assign(indirect_effect=lambda f: f.share_of_total, total_effect=1.0)
    gate = {"passed": band_share >= 1 / 3, "claims": []}
    record = {"band": band, "batch_size": 7, "gates": {"G3": gate}, "commit": "abc1234", "traced_facts": 9}
    store.write_calibration(folder, record | {"window": window}, {"trace_summary": summary})


def test_the_trace_reading_finds_the_peak_and_the_best_window_that_leaves_out_layer_0(tmp_path):
    # layer 0's MLP dominates, as on SmolLM2; among the windows of 2 that leave out layer 0, the one at 3-4 is best
    _trace(tmp_path / "a", [0.7, 0.0, 0.1, 0.2, 0.3, 0.0], [0.8, 0.1, 0.2, 0.4, 0.1, 0.0], [2, 3], 0.25, 2)
    _trace(tmp_path / "b", [0.0, 0.1, 0.6, 0.0, 0.0, 0.0], [0.1, 0.2, 0.7, 0.5, 0.0, 0.0], [2, 3], 0.65, 2)
    reading = chapter.trace_reading(tmp_path, ["a", "b", "c"])
    assert reading.glue["a_peak"] == "0" and reading.glue["a_peak_share"] == "0.70"
    assert reading.glue["a_window"] == "2-3" and reading.glue["a_window_share"] == "0.40"
    assert reading.glue["a_band_share"] == "0.25" and reading.glue["a_g3"] == "fails"
    assert reading.glue["b_peak"] == "2" and reading.glue["b_g3"] == "passes" and reading.glue["b_traced"] == "9"
    # a model without a trace: every value the prose quotes says so, and the command that makes it is printed
    assert all(reading.glue[f"c_{name}"] == "not traced yet" for name in chapter.TRACE_GLUE)
    assert any("scripts/calibrate.py --model c --parts trace" in str(part) for part in reading.parts)


def test_the_knowledge_and_speed_readings_say_what_is_not_measured_yet(tmp_path):
    knowledge = chapter.knowledge_reading(tmp_path, ["x"])
    assert knowledge.glue["x_format"] == "not measured yet"
    speed = chapter.speed_reading(tmp_path / "none.json", ["x"])
    assert "benchmarks/real_llm_batch.py --models x" in str(speed.parts[0])
    assert all(speed.glue[f"x_{name}"] == "not measured yet" for name in chapter.SPEED_GLUE)


def test_the_speed_reading_glues_each_measured_model_and_marks_the_missing_one(tmp_path):
    import json

    rows = [{"model": "a", "edits": 11, "per edit": 1.234, "values speed-up": 6.06, "values": 9.0, "all in": 12.0}]
    path = tmp_path / "speed.json"
    path.write_text(json.dumps({"commit": "abc", "date": "2026-12-04T05:00", "threads": 2, "rows": rows}))
    speed = chapter.speed_reading(path, ["a", "b"])
    assert speed.glue["a_per_edit"] == "1.23" and speed.glue["a_values_speedup"] == "6.1"
    assert speed.glue["a_edits"] == "11" and speed.glue["a_values_share"] == "0.75"
    assert speed.glue["a_per_edit_goal"] == "no goal set" and speed.glue["a_speedup_goal"] == "meets the 5x goal"
    assert speed.glue["b_per_edit"] == "not measured yet"
    rows[0] |= {"model": "smollm2-135m", "per edit": 1.6, "values speed-up": 4.9}
    path.write_text(json.dumps({"commit": "abc", "date": "2026-12-04T05:00", "threads": 2, "rows": rows}))
    speed = chapter.speed_reading(path, ["smollm2-135m"])
    assert speed.glue["smollm2_135m_per_edit_goal"] == "misses its 1.5 s goal"
    assert speed.glue["smollm2_135m_speedup_goal"] == "misses the 5x goal"


@pytest.mark.parametrize("model", ["smollm2-135m", "gemma-3-270m"])
def test_the_committed_traces_read_as_their_gate_says(model):
    """The committed trace of each real LLM (``results/calibration/<model>/``): the reading's pass or fail is the
    gate's, and the band's share is the one the gate judged."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "results" / "calibration"
    record = store.read_calibration(root / model)
    assert record is not None, f"{model}'s committed calibration is missing"
    reading = chapter.trace_reading(root, [model])
    key = chapter.key(model)
    assert reading.glue[f"{key}_g3"] == ("passes" if record["gates"]["G3"]["passed"] else "fails")
    share = next(c["value"] for c in record["gates"]["G3"]["claims"] if "share of the total effect" in c["claim"])
    assert reading.glue[f"{key}_band_share"] == f"{share:.2f}"


def test_the_band_reading_quotes_the_sweep_and_the_files_band(tmp_path):
    from langedit_mini.study.bands import band_summary

    rows = []
    for band, value in (("1-5", 0.4), ("3-7", 0.6), ("5-9", 0.5)):
        for method in ("MEMIT", "AlphaEdit"):
            for metric in ("reliability", "generality", "locality"):
                rows.append({"band": band, "method": method, "metric": metric, "teacher_forced": value})
    summary = band_summary(pd.DataFrame(rows).assign(unreached=False, lang="en"))
    folder = tmp_path / "smollm2-135m" / "bands"
    store.write_table(folder / "summary.csv", summary)
    record = {"chosen": "3-7", "batch_size": 11, "methods": ["MEMIT", "AlphaEdit"], "commit": "abc1234"}
    store.write_json(folder / "bands.json", record)
    reading = chapter.band_reading(tmp_path, ["smollm2-135m", "gemma-3-270m"])
    assert reading.glue["smollm2_135m_chosen_band"] == "3-7" and reading.glue["smollm2_135m_band_objective"] == "0.600"
    assert reading.glue["smollm2_135m_file_band"] == "3-7"  # the hyperparameter file's layers 3..7
    assert reading.glue["smollm2_135m_file_band_objective"] == "0.600"
    assert reading.glue["smollm2_135m_band_margin"] == "0.100"  # ahead of 5-9's 0.5
    margin = {"over": "5-9", "mean": 0.1, "half_width_95": 0.12, "pairs": 132, "separated": False}
    store.write_json(folder / "bands.json", record | {"margin": margin})
    with_interval = chapter.band_reading(tmp_path, ["smollm2-135m"]).glue["smollm2_135m_band_margin"]
    assert with_interval == "0.100 ± 0.120 over 132 paired requests, not separated"
    assert reading.glue["smollm2_135m_bands_swept"] == "3"
    assert reading.glue["smollm2_135m_band_metrics"] == (  # the chosen band first, then the sweep's order
        "3-7 (chosen): reliability 0.60, locality 0.60, unreached 0.000; "
        "1-5: reliability 0.40, locality 0.40, unreached 0.000; 5-9: reliability 0.50, locality 0.50, unreached 0.000"
    )
    assert reading.glue["gemma_3_270m_band_metrics"] == "not swept yet"
    assert reading.glue["gemma_3_270m_chosen_band"] == "not swept yet"
    assert reading.glue["gemma_3_270m_file_band"] == "3-5"
    assert any("no band sweep yet" in part for part in reading.parts if isinstance(part, str))
    store.write_table(folder / "summary.csv", summary.iloc[1:2])
    store.write_json(folder / "bands.json", record | {"chosen": None})
    alone = chapter.band_reading(tmp_path, ["smollm2-135m"]).glue
    assert alone["smollm2_135m_chosen_band"] == "none yet (one band swept)" and alone["smollm2_135m_bands_swept"] == "1"
    assert alone["smollm2_135m_band_objective"] == "n/a" and alone["smollm2_135m_file_band_objective"] == "0.600"
    assert alone["smollm2_135m_band_metrics"] == "3-7: reliability 0.60, locality 0.60, unreached 0.000"
    unfinished = tmp_path / "gemma-3-270m" / "bands"  # a first sweep stopped before its summary
    store.write_json(unfinished / "bands.json", {"batch_size": 14, "chosen": None, "timings_s": {"3-5": 2100.0}})
    stopped = chapter.band_reading(tmp_path, ["gemma-3-270m"])
    assert stopped.glue["gemma_3_270m_chosen_band"] == "sweep not finished"
    assert stopped.glue["gemma_3_270m_file_band"] == "3-5"
    assert any("bands done: 3-5" in part for part in stopped.parts if isinstance(part, str))


def test_the_preserved_reading_quotes_the_sizes_tokens_and_rank_of_the_projector(tmp_path):
    folder = tmp_path / "smollm2-135m" / "preserved"
    summary = pd.DataFrame(
        {"size": [300, 10000], "reliability": [0.9, 0.9], "generality": [0.8, 0.8], "locality": [0.85, 0.93]}
    ).assign(objective=0.8, unreached=0.5, tokens=[9000, 300000], **{"smallest rank_P": [1400, 900]})
    store.write_table(folder / "summary.csv", summary)
    rows = [
        {"layer": layer, "size": size, "rank_P": rank, "d_k": 1536, "tau": 0.02, "discarded_share": rank / 4000}
        for size, base in ((300, 1400), (10000, 900))
        for layer, rank in ((3, base), (4, base + 10))
    ]
    store.write_table(folder / "null_space.csv", pd.DataFrame(rows))
    scores = pd.DataFrame(
        [
            {"size": size, "method": "AlphaEdit", "lang": "en", "fact_id": f"f{i}", "metric": "locality"}
            | {"teacher_forced": base + 0.01 * i}
            for size, base in ((300, 0.80), (10000, 0.90))
            for i in range(4)
        ]
    )
    store.write_table(folder / "scores.csv", scores)
    tokens = {"300": {"en": 4000, "de": 5000}, "10000": {"en": 140000, "de": 160000}}
    record = {"band": "3-4", "batch_size": 11, "methods": ["AlphaEdit"], "tokens": tokens, "commit": "abc1234"}
    store.write_json(folder / "preserved.json", record)
    reading = chapter.preserved_reading(tmp_path, ["smollm2-135m", "gemma-3-270m"])
    glue = reading.glue
    assert glue["smollm2_135m_c0_sizes"] == "300, 10,000"
    assert glue["smollm2_135m_c0_full_tokens"] == "en 140,000, de 160,000"
    assert glue["smollm2_135m_c0_rank_p"] == "layer 3: 900, layer 4: 910 of 1,536"
    assert glue["smollm2_135m_c0_discarded"] == "0.23 to 0.23"  # 900 / 4000 and 910 / 4000
    assert glue["smollm2_135m_c0_locality_small"] == "0.850" and glue["smollm2_135m_c0_locality_full"] == "0.930"
    assert glue["smollm2_135m_c0_locality_change"] == "-0.100 ± 0.000 over 4 paired requests, lower"
    assert glue["gemma_3_270m_c0_sizes"] == "not measured yet"
    ranks = reading.tables["rank(P) per layer smollm2-135m"]
    assert ranks.loc[4, "rank(P), N=300"] == 1410 and ranks.loc[3, "d_k"] == 1536


def test_the_tuning_reading_chooses_only_from_complete_grids_and_says_how_far_the_others_got(tmp_path):
    from langedit_mini.study.tuning import STAGE_1, STAGE_2, config_name

    folder = tmp_path / "smollm2-135m"
    rows = [
        {"method": "MEMIT", "config": config_name(config), "objective": 0.80 + 0.01 * i, "seconds": 450.0}
        for i, config in enumerate(STAGE_1["MEMIT"])
    ] + [
        {"method": "AlphaEdit", "config": config_name(config), "objective": 0.7, "seconds": 450.0}
        for config in STAGE_1["AlphaEdit"][:3]
    ]
    scores = {"reliability TF": 0.9, "generality TF": 0.8, "locality TF": 0.9, "written TF": 0.95}
    runs = pd.DataFrame(rows).assign(**scores, unreached=3)
    store.write_tuning_runs(folder, runs)
    partial = chapter.tuning_reading(tmp_path, ["smollm2-135m", "gemma-3-270m"])
    assert partial.glue["smollm2_135m_tuned_memit"] == "8 of its 8 configurations run, none chosen yet"
    assert partial.glue["smollm2_135m_tuned_alphaedit"] == "3 of its 8 configurations run, none chosen yet"
    assert partial.glue["smollm2_135m_tuned_ft"] == "not tuned yet"
    assert partial.glue["smollm2_135m_tuning_point"] == "the point of the rows run so far (no tuning.json yet)"
    assert partial.glue["smollm2_135m_tuning_hours"] == "1.4"  # 11 rows of 450 s
    assert partial.glue["smollm2_135m_tuning_minutes"] == "8 (median; 8 to 8)" and partial.glue[
        "gemma_3_270m_tuning_minutes"
    ] == ("not measured")
    assert partial.glue["gemma_3_270m_tuning_point"] == "not tuned yet"
    assert len(partial.tables["tuning smollm2-135m"]) == 11
    assert not any("versions of the code" in str(part) for part in partial.parts)  # rows without a hash: nothing
    mixed = runs.assign(package_hash=["old"] * 8 + ["new"] * 3)
    store.write_tuning_runs(folder, mixed)
    said = chapter.tuning_reading(tmp_path, ["smollm2-135m"]).parts
    assert any("made by 2 versions of the code (new, old) and not rechecked" in str(part) for part in said)
    store.write_tuning_runs(folder, runs)
    point = {"edits_per_language": 11, "batch_size": 11, "schedule": "delta", "seed": 0}
    best = {"config": STAGE_1["MEMIT"][7], "objective": 0.87, "runs": 8}
    record = {"stage": 1, "point": point, "commit": "abc1234", "objective": "mean", "chosen": {"MEMIT": best}}
    store.write_json(folder / "tuning.json", record)
    done = chapter.tuning_reading(tmp_path, ["smollm2-135m"]).glue
    assert done["smollm2_135m_tuned_memit"] == (
        "mom2_weight=10000 (objective 0.870), at its grid's edge (mom2_weight 10000, the largest tried); its grid's "
        "objectives span 0.800 to 0.870; "
        "its margin over the runner-up not measured (rows without per-request scores)"
    )
    margin = {"runner_up": "mom2_weight=3000", "mean": 0.0104, "half_width": 0.021, "pairs": 66}
    store.write_json(folder / "tuning.json", record | {"chosen": {"MEMIT": best | {"margin": margin}}})
    measured = chapter.tuning_reading(tmp_path, ["smollm2-135m"]).glue["smollm2_135m_tuned_memit"]
    assert measured.endswith("; ahead of the runner-up (mom2_weight=3000) by +0.010 ± 0.021 over 66 paired requests")
    inside = {"config": STAGE_1["MEMIT"][3], "objective": 0.83, "runs": 8}  # not at an edge: nothing said of one
    store.write_json(folder / "tuning.json", record | {"chosen": {"MEMIT": inside}})
    assert (
        chapter.tuning_reading(tmp_path, ["smollm2-135m"])
        .glue["smollm2_135m_tuned_memit"]
        .startswith("mom2_weight=100 (objective 0.830); its grid's")
    )
    # a grid of two settings: an edge is said per setting, whichever the configuration's place in the list
    corner = {"config": {"leftover_fraction": 0.2, "alpha": 30.0}, "objective": 0.7, "runs": 8}
    store.write_json(folder / "tuning.json", record | {"chosen": {"AlphaEdit": corner}})
    stated = chapter.tuning_reading(tmp_path, ["smollm2-135m"]).glue["smollm2_135m_tuned_alphaedit"]
    assert stated.startswith(
        "alpha=30 leftover_fraction=0.2 (objective 0.700), at its grid's edge (alpha 30, the smallest tried; "
        "leftover_fraction 0.2, the largest tried)"
    )
    assert done["smollm2_135m_tuning_point"].startswith("11 edits per language in batches of 11, delta schedule")
    # a record without a stage (older ones) with a row of stage 2: stage 2's grid, of which MEMIT ran part
    store.write_json(folder / "tuning.json", {k: v for k, v in record.items() if k != "stage"} | {"chosen": {}})
    later = runs.iloc[:1].assign(config=config_name(STAGE_2["MEMIT"][0]))
    store.write_tuning_runs(folder, pd.concat([runs, later]))
    older = chapter.tuning_reading(tmp_path, ["smollm2-135m"]).glue
    assert older["smollm2_135m_tuned_memit"] == "9 of its 12 configurations run, none chosen yet"


def test_the_tuning_reading_reads_every_configuration_against_the_unedited_model(tmp_path):
    """The unedited model's row heads the table; a configuration whose every final score is the unedited
    model's is named as one that ended where it started, one a single request away is not."""
    from langedit_mini.study.tuning import UNEDITED

    folder = tmp_path / "smollm2-135m"
    facts = [("en", f"f{i}", metric) for i in range(3) for metric in ("reliability", "generality", "locality")]
    base = pd.DataFrame(facts, columns=["lang", "fact_id", "metric"]).assign(batch=0, exact_match=False)
    floor = base.assign(teacher_forced=[0.3, 0.4, 1.0] * 3, method=UNEDITED, config=UNEDITED)
    still = floor.assign(method="LangEdit-exact", config="alpha=300 leftover_fraction=0.02")
    moved = floor.assign(method="LangEdit-exact", config="alpha=30 leftover_fraction=0.02")
    moved.loc[0, "teacher_forced"] = 0.31  # one request moved by 0.01
    store.write_tuning_scores(folder, pd.concat([still, moved], ignore_index=True))
    columns = {"reliability TF": 0.3, "generality TF": 0.4, "locality TF": 1.0, "written TF": 0.3}
    runs = pd.DataFrame({"method": "LangEdit-exact", "config": [still.config[0], moved.config[0]]})
    store.write_tuning_runs(folder, runs.assign(objective=0.567, unreached=0, seconds=60.0, **columns))
    no_floor = chapter.tuning_reading(tmp_path, ["smollm2-135m"])
    assert no_floor.glue["smollm2_135m_tuning_unedited"] == "not measured"
    assert len(no_floor.tables["tuning smollm2-135m"]) == 2
    row = {"method": UNEDITED, "config": UNEDITED, **columns, "objective": 0.5667, "unreached": 0, "seconds": 3.0}
    store.write_tuning_unedited(folder, row | {"commit": "abc1234def", "package_hash": "h"}, floor)
    reading = chapter.tuning_reading(tmp_path, ["smollm2-135m"])
    table = reading.tables["tuning smollm2-135m"]
    assert table.index[0] == (UNEDITED, UNEDITED) and len(table) == 3 and table.objective.iloc[0] == 0.567
    assert reading.glue["smollm2_135m_tuning_unedited"] == (
        "0.567 (reliability 0.300, generality 0.400, locality 1.000, teacher-forced; commit abc1234)"
    )
    assert reading.glue["smollm2_135m_tuning_unmoved"] == (
        "1 of the 2 configurations with per-request scores (LangEdit-exact alpha=300 leftover_fraction=0.02)"
    )
    moves = reading.tables["tuning against the unedited model smollm2-135m"]
    assert moves.loc[("LangEdit-exact", moved.config[0])].to_dict() == {
        "reliability change": round(0.01 / 3, 3),
        "reliability moved": 1,
        "generality change": 0.0,
        "generality moved": 0,
        "locality change": 0.0,
        "locality moved": 0,
        "moved": 1,
        "requests": 3,
    }
    assert moves.loc[("LangEdit-exact", still.config[0])].moved == 0
    assert "tuning LangEdit-exact minus LangEdit-published smollm2-135m" not in reading.tables  # one form only
    store.write_tuning_unedited(folder, row | {"commit": "abc1234def", "package_hash": "h"}, floor.iloc[3:])
    with pytest.raises(ValueError, match="has 3 scores \\(request, metric\\) the unedited model has not"):
        chapter.tuning_reading(tmp_path, ["smollm2-135m"])


def test_the_two_langedit_forms_are_paired_by_request_where_both_ran_a_configuration(tmp_path):
    from langedit_mini.study.tuning import method_margins

    facts = [("en", f"f{i}", metric) for i in range(4) for metric in ("reliability", "generality", "locality")]
    base = pd.DataFrame(facts, columns=["lang", "fact_id", "metric"]).assign(batch=0, exact_match=False)
    published = base.assign(method="LangEdit-published", config="alpha=30", teacher_forced=0.5)
    exact = published.assign(method="LangEdit-exact")
    exact.loc[exact.metric == "reliability", "teacher_forced"] = [0.2, 0.2, 0.2, 0.2]  # 0.3 less written
    alone = published.assign(config="alpha=300")  # the published form only: not paired
    table = method_margins(pd.concat([published, exact, alone]), "LangEdit-exact", "LangEdit-published")
    assert table.index.tolist() == ["alpha=30"]
    assert table.loc["alpha=30"].to_dict() == {
        "objective": "-0.100 ± 0.000",
        "reliability": "-0.300 ± 0.000",
        "generality": "+0.000 ± 0.000",
        "locality": "+0.000 ± 0.000",
        "pairs": 4,
    }
    store.write_tuning_scores(tmp_path / "smollm2-135m", pd.concat([published, exact]))
    runs = pd.DataFrame({"method": ["LangEdit-exact"], "config": ["alpha=30"]})
    store.write_tuning_runs(tmp_path / "smollm2-135m", runs.assign(**dict.fromkeys(chapter.TUNING_COLUMNS, 0.5)))
    reading = chapter.tuning_reading(tmp_path, ["smollm2-135m"])
    assert reading.tables["tuning LangEdit-exact minus LangEdit-published smollm2-135m"].equals(table)
    with pytest.raises(ValueError, match="cannot be paired"):
        method_margins(pd.concat([published, exact.iloc[1:]]), "LangEdit-exact", "LangEdit-published")


def test_the_live_batchs_settings_say_which_were_tuned(tmp_path):
    from langedit_mini.editing.defaults import list_hparams

    data = json.loads(open(list_hparams().loc["smollm2-135m", "path"]).read())
    data.pop("methods", None)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    starting = chapter.method_settings(str(path), ["MEMIT", "AlphaEdit"])
    assert starting == (
        f"MEMIT mom2_weight={data['settings']['mom2_weight']:g} (starting values), AlphaEdit "
        f"alpha={data['settings']['alpha']:g} tau={data['settings']['tau']:g} (starting values)"
    )
    path.write_text(json.dumps(data | {"methods": {"AlphaEdit": {"leftover_fraction": 0.1, "alpha": 30.0}}}))
    tuned = chapter.method_settings(str(path), ["MEMIT", "AlphaEdit"])
    assert tuned.endswith("AlphaEdit alpha=30 leftover_fraction=0.1 (tuned)")  # the tuned cut replaces tau
    assert tuned.startswith("MEMIT mom2_weight=") and "(starting values)" in tuned


def test_the_live_batchs_file_settings_read_what_they_write_from_the_tuning_table(tmp_path):
    settings = chapter.method_settings("smollm2-135m", ["MEMIT", "AlphaEdit"])  # "MEMIT mom2_weight=... (tuned), ..."
    names = {part.split(" ", 1)[0]: part.split(" ", 1)[1].rsplit(" (", 1)[0] for part in settings.split(", ")}
    folder = tmp_path / "smollm2-135m"
    runs = pd.DataFrame(
        [
            {"method": "MEMIT", "config": "mom2_weight=1", "written TF": 0.1},  # another configuration
            {"method": "MEMIT", "config": names["MEMIT"], "written TF": 0.7254},
            {"method": "AlphaEdit", "config": names["MEMIT"], "written TF": 0.3},  # another method's name
        ]
    )
    store.write_tuning_runs(folder, runs)
    assert chapter.written_at_settings(tmp_path, "smollm2-135m", ["MEMIT", "AlphaEdit"]) == (
        f"MEMIT 0.725, AlphaEdit not in the tuning table ({names['AlphaEdit']})"
    )
    store.write_tuning_runs(folder, runs.drop(columns="written TF"))  # rows made before the column
    assert chapter.written_at_settings(tmp_path, "smollm2-135m", ["MEMIT"]) == (
        f"MEMIT not measured ({names['MEMIT']}'s row predates the column)"
    )


def test_the_g1_reading_gives_the_gates_verdict_and_each_methods_scores(tmp_path):
    from langedit_mini.study.calibration import merged_calibration
    from langedit_mini.study.verdicts import write_gate

    _trace(tmp_path / "a", [0.7, 0.0, 0.1], [0.8, 0.1, 0.2], [1, 2], 0.25, 2)  # traced first, as a real LLM is
    rows = [
        {"method": method, "lang": lang, "request": request, "metric": metric, "teacher_forced": value}
        | {"unreached": {"en": 1, "de": 2}[lang]}  # one count per batch, on each of its rows
        for method, reliability in (("MEMIT", 0.7), ("AlphaEdit", 1.0))
        for lang in ("en", "de")
        for request in range(3)
        for metric, value in (("reliability", reliability), ("generality", 0.9), ("locality", 0.95))
    ]
    scores = pd.DataFrame(rows)
    gate = write_gate(scores, 7)
    earlier = store.read_calibration(tmp_path / "a") | {"parts": ["trace"], "tuning_facts": 20, "seed": 0}
    record = {k: earlier[k] for k in ("band", "batch_size", "tuning_facts", "seed")} | {"model": None}
    record |= {"parts": ["write"], "gates": {"G1": gate.as_dict()}, "timings_s": {"G1": 1.0}, "commit": "def5678"}
    hundred = scores[scores.lang == "en"].assign(teacher_forced=0.5)
    tables = {"write": scores, "write_100": hundred}
    store.write_calibration(tmp_path / "a", merged_calibration(earlier, record), tables)
    reading = chapter.write_reading(tmp_path, ["a", "b"])
    assert reading.glue["a_g1"] == "fails"  # MEMIT's reliability 0.7 is under the gate's bound
    assert reading.glue["a_g1_scores"] == (
        "AlphaEdit reliability 1.000, generality 0.900, locality 0.950; MEMIT reliability 0.700, generality 0.900, "
        "locality 0.950"
    )
    assert reading.glue["a_g1_100"].startswith("AlphaEdit reliability 0.50")
    assert reading.glue["a_g1_commit"] == "def5678"
    assert reading.glue["a_g1_unreached"] == "AlphaEdit 3 of 6, MEMIT 3 of 6"  # per batch, not per row
    table = reading.tables["G1 a: mean teacher-forced score per language"]
    assert table.loc[("MEMIT", "reliability"), "de"] == 0.7 and table.loc[("AlphaEdit", "locality"), "all"] == 0.95
    assert all(reading.glue[f"b_{name}"] == "not run yet" for name in chapter.WRITE_GLUE)
    assert chapter.trace_reading(tmp_path, ["a"]).glue["a_g3"] == "fails"  # the trace is still read after G1
    without = merged_calibration(earlier, record | {"batch_of_100": False})  # G1 again, without the batch of 100
    store.write_calibration(tmp_path / "a", without, {"write": scores})
    assert chapter.write_reading(tmp_path, ["a"]).glue["a_g1_100"] == "not measured"  # the old file is not read


def test_g1_diagnostics_read_their_settings_from_the_record_or_the_kept_file(tmp_path):
    """G1 made again with other settings: the settings come from the record's ``written_with`` or, for an older
    record, from the hyperparameter file kept beside it; the scores, the reliability per language and the
    unreached count per method; a diagnostic not run says so."""
    from langedit_mini.editing.defaults import HPARAMS_DIRECTORY
    from langedit_mini.study.calibration import written_with
    from langedit_mini.study.verdicts import write_gate

    rows = [
        {"method": method, "lang": lang, "request": request, "metric": metric, "teacher_forced": value}
        | {"unreached": {"en": 0, "zh": 4}[lang]}
        for method, zh in (("MEMIT", 0.5), ("AlphaEdit", 0.9))
        for lang in ("en", "zh")
        for request in range(2)
        for metric, value in (("reliability", 1.0 if lang == "en" else zh), ("generality", 0.9), ("locality", 0.95))
    ]
    scores = pd.DataFrame(rows)
    shipped = json.loads((HPARAMS_DIRECTORY / "smollm2-135m.json").read_text())
    starting = {k: v for k, v in shipped.items() if k != "methods"}
    older = tmp_path / "m" / "old"
    record = {"parts": ["write"], "gates": {"G1": write_gate(scores, 2).as_dict()}, "commit": "abc1234"}
    record |= {"band": starting["layers"], "batch_size": 2}
    store.write_calibration(older, record, {"write": scores})
    (older / "hparams.json").write_text(json.dumps(starting))
    newer_settings = written_with("smollm2-135m")
    newer = record | {"written_with": newer_settings, "uncommitted_changes": True}
    store.write_calibration(tmp_path / "m" / "new", newer, {"write": scores})
    diagnostics = {"old": "starting values", "new": "the file", "none": "never run"}
    reading = chapter.write_diagnostics_reading(tmp_path, "m", diagnostics)
    table = reading.tables["G1's batches with other settings on m (information, not the gate)"]
    assert table.loc[("old", "MEMIT"), "settings"] == f"mom2_weight {starting['settings']['mom2_weight']:g}"
    expected = newer_settings["MEMIT"]["settings"]["mom2_weight"]
    assert table.loc[("new", "MEMIT"), "settings"] == f"mom2_weight {expected:g}"
    assert table.loc[("old", "AlphaEdit"), "value steps"] == starting["values"]["steps"]
    assert table.loc[("old", "MEMIT"), "reliability zh"] == 0.5 and table.loc[("old", "MEMIT"), "reliability"] == 0.75
    assert table.loc[("old", "MEMIT"), "unreached"] == 4 and table.loc[("old", "MEMIT"), "edits"] == 4
    assert not table.loc[("old", "MEMIT"), "G1 bounds hold"] and table.loc[("old", "AlphaEdit"), "G1 bounds hold"]
    assert reading.glue["m_old_zh"] == "AlphaEdit 0.90, MEMIT 0.50"
    assert reading.glue["m_old_scores"].endswith("MEMIT reliability 0.750, generality 0.900, locality 0.950")
    assert reading.glue["m_old_unreached"] == "AlphaEdit 4, MEMIT 4"
    assert all(reading.glue[f"m_none_{name}"] == "not run yet" for name in ("scores", "zh", "unreached"))
    said = {line.split(":")[0]: line for line in reading.lines}
    assert said["m, new"].endswith("with uncommitted changes") and "uncommitted" not in said["m, old"]
    # a probe is read where it was run, and only there; its rows say where the value step added delta
    assert not any("g1_residual_values" in line for line in chapter.write_diagnostics_reading(tmp_path, "m").lines)
    probe = newer | {"probe": {"value_site": "residual"}}
    store.write_calibration(tmp_path / "m" / "g1_residual_values", probe, {"write": scores})
    table = chapter.write_diagnostics_reading(tmp_path, "m").tables[
        "G1's batches with other settings on m (information, not the gate)"
    ]
    assert table.loc[("g1_residual_values", "MEMIT"), "delta added to"] == "residual"
    assert list(table.index.get_level_values("run").unique()) == ["g1_residual_values"]  # the defaults: not run
    assert (
        table.loc[("g1_residual_values", "AlphaEdit"), "value steps"] == newer_settings["AlphaEdit"]["values"]["steps"]
    )
    # a record names its value step's site; one made before the setting existed says "the package's site"
    sites = (
        chapter.write_diagnostics_reading(tmp_path, "m", diagnostics)
        .tables["G1's batches with other settings on m (information, not the gate)"]["delta added to"]
        .xs("MEMIT", level="method")
    )
    assert sites["new"] == newer_settings["MEMIT"]["values"]["site"] == "residual"
    assert sites["old"] == "the package's site"
    older_with_site = starting | {"values": starting["values"] | {"site": "mlp"}}
    (older / "hparams.json").write_text(json.dumps(older_with_site))
    assert (
        chapter.write_diagnostics_reading(tmp_path, "m", diagnostics)
        .tables["G1's batches with other settings on m (information, not the gate)"]
        .loc[("old", "MEMIT"), "delta added to"]
        == "mlp"
    )


def test_the_value_step_reading_tabulates_the_reach_and_quotes_the_choice(tmp_path):
    from langedit_mini.study.value_steps import choose_steps, reach_curve

    reach = pd.DataFrame(
        [
            {"lang": lang, "steps": steps, "reached": steps < 100, "target_tokens": tokens}
            for lang, runs in {"en": [(3, 2), (10, 3)], "zh": [(20, 9), (60, 15), (100, 17)]}.items()
            for steps, tokens in runs
        ]
    )
    curve = reach_curve(reach, (25, 50, 100))
    folder = tmp_path / "m" / "value_steps"
    folder.mkdir(parents=True)
    curve.to_csv(folder / "curve.csv", index=False)
    record = {"languages": ["en", "zh"], "batches": 1, "batch_size": 3, "most": 100, "commit": "abc1234"}
    store.write_json(folder / "value_steps.json", record | {"chosen": choose_steps(curve, 0.6)})
    reading = chapter.value_steps_reading(tmp_path, ["m", "other"])
    table = reading.tables["value step on m (value_steps): share of targets reached"]
    assert any("delta added to the package's site" in line for line in reading.lines)  # made before the setting
    assert table.loc["zh", "reached within 25"] == 0.33  # rounded to two places
    assert table.loc["zh", "reached within 100"] == 0.67 and table.loc["en", "reached within 25"] == 1
    assert list(table.index) == ["en", "zh", "all"] and table.loc["zh", "median target tokens"] == 15
    assert reading.glue["m_value_steps_chosen"].startswith("100 steps (every language reaches at least 60%")
    assert reading.glue["m_value_steps_at_25"] == "en 1.00, zh 0.33"
    assert reading.glue["m_value_steps_tokens"] == "en 2.5, zh 15"
    assert reading.glue["m_value_steps_requests"] == "5"
    assert reading.glue["other_value_steps_chosen"] == "not measured yet"
    # another sweep of the same model (another site) reads from its own folder under its own names
    other = tmp_path / "m" / "value_steps_mlp"
    other.mkdir()
    curve.to_csv(other / "curve.csv", index=False)
    store.write_json(
        other / "value_steps.json", record | {"chosen": choose_steps(curve, 0.9), "values": {"site": "mlp"}}
    )
    reading = chapter.value_steps_reading(tmp_path, ["m"], sweep="value_steps_mlp")
    assert reading.glue["m_value_steps_mlp_chosen"].startswith("none of the allowances tried")
    assert "m_value_steps_chosen" not in reading.glue
    assert any(line.startswith("m, value_steps_mlp:") and "delta added to mlp" in line for line in reading.lines)


def test_a_probe_is_paired_with_its_baseline_edit_by_edit(tmp_path):
    """The probe's change over the run it changes one thing of: per method and metric, the mean of the paired
    differences with its 95% interval; edits that are not the same in both runs are refused."""
    rows = [
        {"method": "MEMIT", "lang": lang, "fact_id": f"f{i}", "request": i, "metric": metric, "unreached": 0}
        | {"teacher_forced": 0.5 + 0.1 * i}
        for lang in ("en", "zh")
        for i in range(3)
        for metric in ("reliability", "generality", "locality", "portability")
    ]
    before = pd.DataFrame(rows)
    after = before.assign(teacher_forced=before.teacher_forced + before.metric.map({"reliability": 0.2}).fillna(0))
    after.loc[(after.metric == "generality") & (after.fact_id == "f0"), "teacher_forced"] += 0.6
    change = chapter.probe_change(before, after)
    assert list(change.columns) == ["reliability", "generality", "locality"] and list(change.index) == ["MEMIT"]
    assert change.loc["MEMIT", "reliability"] == "+0.200 ± 0.000"
    assert (
        change.loc["MEMIT", "generality"].startswith("+0.200 ± ")
        and change.loc["MEMIT", "locality"] == "+0.000 ± 0.000"
    )
    with pytest.raises(ValueError, match="did not write the same edits: 6 scores"):
        chapter.probe_change(before, after[after.fact_id != "f2"].assign())
    from langedit_mini.study.calibration import written_with
    from langedit_mini.study.verdicts import write_gate

    for name, table in (("g1_starting_steps", before), ("g1_residual_values", after)):
        gate = write_gate(table, 3, methods=["MEMIT"]).as_dict()
        record = {"parts": ["write"], "gates": {"G1": gate}, "commit": "abc1234", "band": [3], "batch_size": 3}
        record |= {"written_with": written_with("smollm2-135m", ["MEMIT"])}
        store.write_calibration(tmp_path / "m" / name, record, {"write": table})
    reading = chapter.write_diagnostics_reading(tmp_path, "m", {"g1_starting_steps": "b", "g1_residual_values": "p"})
    assert reading.glue["m_g1_residual_values_paired"].startswith("MEMIT reliability +0.200 ± 0.000, generality +0.200")


def _proxies(method, seed, after, perplexity, retained):
    """The offline proxies' rows (``evaluation.offline_ability``) of one measure in en and de: perplexity
    ``perplexity`` in en and 4 times it in de; real facts 0.3 / 0.1; known facts retained ``retained`` of 4 (en)
    and 1 (de) known."""
    rows = []
    for lang, scale, known in (("en", 1, 4), ("de", 4, 1)):
        rows += [
            {"lang": lang, "probe": "held-out text", "metric": "perplexity", "value": perplexity * scale, "n": 50},
            {"lang": lang, "probe": "real facts", "metric": "teacher-forced", "value": 0.3, "n": 50},
            {"lang": lang, "probe": "real facts", "metric": "exact match", "value": 0.1, "n": 50},
            {"lang": lang, "probe": "known facts", "metric": "retained", "value": retained, "n": known},
        ]
    return pd.DataFrame(rows).assign(method=method, seed=seed, after_batch=after)


def _sequential_run(folder, method, seed, reliability, locality, proxies=None):
    """A finished run of a sequential study under ``folder`` (``store.finish_part``): two languages' edits, scored
    after batch 0 and after the last batch (1) with the given final reliability and locality; ``proxies``: the
    perplexity and known facts retained after the last batch (the unedited model: 10 and 1.0)."""
    from types import SimpleNamespace

    rows = [
        {"method": method, "seed": seed, "after_batch": after, "batch": 0, "lang": lang, "request": request}
        | {"fact_id": f"f{request}"}
        | {"metric": metric, "teacher_forced": value if after == 1 else 1.0}
        | {"exact_match": value / 2 if after == 1 else 1.0}
        for after in (0, 1)
        for lang in ("en", "de")
        for request in range(3)
        for metric, value in (("reliability", reliability), ("generality", 0.5), ("locality", locality))
    ]
    empty = pd.DataFrame()
    batches = pd.DataFrame(
        [{"method": method, "seed": seed, "batch": b, "lang": "en", "unreached": b + 1} for b in (0, 1)]
    )
    probes = empty
    if proxies is not None:
        measures = [_proxies("unedited", -1, -1, 10.0, 1.0), _proxies(method, seed, 0, 11.0, 1.0)]
        probes = pd.concat([*measures, _proxies(method, seed, 1, *proxies)], ignore_index=True)
    study = SimpleNamespace(evaluations=pd.DataFrame(rows), probes=probes, transfer=empty, batches=batches)
    parameters = {"edits_per_language": 12, "batch_size": 3, "languages": ["en", "de"], "schedule": "delta"}
    record = {"method": method, "seed": seed, "parameters": parameters, "package_hash": "h", "wall_s": 600.0}
    name = store.part_name(seed, method)
    store.begin_part(folder, name)
    store.finish_part(folder, name, study, record | {"finished": "2026-12-05"})


def test_the_g2_reading_waits_for_three_seeds_and_then_gives_the_gates_verdict(tmp_path):
    calibration, density = tmp_path / "calibration", tmp_path / "density"
    store.write_calibration(calibration / "a", {"band": [1, 2], "batch_size": 3, "gates": {}, "commit": "c"}, {})
    reading = chapter.sequential_gate_reading(density, calibration, ["a", "b"])
    # a model without a calibration, or without runs: every glued value says so, and the command is printed
    assert all(reading.glue[f"{m}_{name}"] == "not run yet" for m in ("a", "b") for name in chapter.G2_GLUE)
    assert any("run_density.py --model a --points e012 --methods MEMIT AlphaEdit" in str(p) for p in reading.parts)
    point = density / "a" / "e012"  # the paper's point: 4 batches per language of the calibration's batch size
    _sequential_run(point, "MEMIT", 0, 0.4, 0.9)
    _sequential_run(point, "AlphaEdit", 0, 0.8, 0.9)
    one = chapter.sequential_gate_reading(density, calibration, ["a"]).glue
    assert one["a_g2"] == "not complete (1 of 3 seeds with both methods)"
    assert one["a_g2_finals"] == "MEMIT 0.400 / 0.500 / 0.900; AlphaEdit 0.800 / 0.500 / 0.900"
    _sequential_run(point, "MEMIT", 1, 0.5, 0.88)
    _sequential_run(point, "AlphaEdit", 1, 0.85, 0.9)
    two = chapter.sequential_gate_reading(density, calibration, ["a"])
    assert two.glue["a_g2"] == "not complete (2 of 3 seeds; provisionally passes)"
    assert two.glue["a_g2_runs"] == "2 of 3 seeds"
    assert two.glue["a_g2_difference"].startswith("reliability +0.375 ± ")
    assert "G2 a: a provisional reading (2 of 3 seeds)" in two.tables
    _sequential_run(point, "MEMIT", 2, 0.45, 0.9)
    _sequential_run(point, "AlphaEdit", 2, 0.5, 0.6)  # in the third seed AlphaEdit keeps about what MEMIT keeps
    three = chapter.sequential_gate_reading(density, calibration, ["a"])
    assert three.glue["a_g2"] == "fails" and three.glue["a_g2_runs"] == "3 of 3 seeds"
    claims = three.tables["G2 a: the gate's claims"]
    assert list(claims.holds) == [False, True]  # reliability's interval now spans 0; locality's reaches above 0
    # each batch read 1.0 right after its write (batch 0, scored after batch 0) and the seed's value after the last;
    # 3 target values unreached per run (1 + 2), 6 edits
    written = three.tables["G2 a: written, then kept or forgotten (mean over seeds)"]
    assert written.loc["MEMIT", "written"] == 1.0 and written.loc["MEMIT", "final"] == 0.45
    # by exact match every edit is kept, forgotten or never written; three seeds behind each mean
    assert written.loc["MEMIT", ["kept", "forgotten", "never_written"]].sum() == 1.0
    assert written.loc["MEMIT", "seeds"] == 3
    assert three.glue["a_g2_written"].startswith(
        "MEMIT 1.000 right after its write, 0.450 after the last batch, 3 of 6"
    )
    table = three.tables["G2 a: final scores at e012 (mean ± 95% interval over seeds)"]
    assert table.loc["MEMIT", "seeds"] == 3 and table.loc["AlphaEdit", "reliability EM"].startswith("0.358 ± ")


def test_the_g2_reading_shows_the_offline_proxies_unedited_and_after_the_last_batch(tmp_path):
    """The general-ability proxies of the G2 runs, pooled over languages: perplexity as the geometric mean, known
    facts retained over every fact known in any language; the unedited model once, each method after its last
    batch with its interval over seeds."""
    calibration, density = tmp_path / "calibration", tmp_path / "density"
    store.write_calibration(calibration / "a", {"band": [1, 2], "batch_size": 3, "gates": {}, "commit": "c"}, {})
    point = density / "a" / "e012"
    _sequential_run(point, "MEMIT", 0, 0.4, 0.9, proxies=(20.0, 0.6))
    _sequential_run(point, "AlphaEdit", 0, 0.8, 0.9, proxies=(10.0, 1.0))
    _sequential_run(point, "MEMIT", 1, 0.5, 0.9, proxies=(30.0, 0.2))
    reading = chapter.sequential_gate_reading(density, calibration, ["a"])
    title = (
        "G2 a: general-ability proxies, unedited and after the last batch (mean ± 95% interval over seeds; "
        "evaluation.offline_ability)"
    )
    table = reading.tables[title]
    assert list(table.columns) == ["unedited", "MEMIT", "AlphaEdit"]
    # geometric mean over en and de of p and 4p is 2p: unedited 20; MEMIT's seeds 40 and 60
    assert table.loc["held-out text, perplexity", "unedited"] == "20.0"
    assert table.loc["held-out text, perplexity", "MEMIT"].startswith("50.0 ± ")
    assert table.loc["held-out text, perplexity", "AlphaEdit"] == "20.0"  # one seed: no interval
    assert table.loc["known facts, retained", "MEMIT"].startswith("0.400 ± ")  # (0.6, 0.2) pooled over 5 known
    assert table.loc["known facts (of the unedited model's)", "unedited"] == "5"
    assert table.loc["real facts, exact match", "AlphaEdit"] == "0.100"
    summary = reading.glue["a_g2_ability"]
    assert summary.startswith("held-out perplexity unedited 20.0, MEMIT 50.0 ± ")
    assert summary.endswith("AlphaEdit 1.000") and "known facts retained (of 5) MEMIT 0.400 ± " in summary
    with pytest.raises(ValueError, match="not the offline proxies"):
        chapter.pooled_proxies(_proxies("MEMIT", 0, 1, 1.0, 1.0).query("probe != 'known facts'"))


def test_the_tuned_settings_are_read_against_the_starting_values_with_the_same_value_step(tmp_path):
    """G1's run minus its starting-value run, paired by edit; a run missing says so; runs whose value steps differ
    are an error, since their difference would not be the settings' alone."""
    from langedit_mini.study.calibration import written_with
    from langedit_mini.study.verdicts import write_gate

    rows = [
        {"method": "MEMIT", "lang": lang, "fact_id": f"f{i}", "request": i, "metric": metric, "unreached": 0}
        | {"teacher_forced": 0.9 - 0.1 * i}
        for lang in ("en", "zh")
        for i in range(3)
        for metric in ("reliability", "generality", "locality")
    ]
    starting = pd.DataFrame(rows)
    tuned = starting.assign(
        teacher_forced=starting.teacher_forced - starting.metric.map({"reliability": 0.3}).fillna(0)
    )
    with_ = written_with("smollm2-135m", ["MEMIT"])
    for folder, table in ((tmp_path / "m", tuned), (tmp_path / "m" / "start", starting)):
        record = {"parts": ["write"], "gates": {"G1": write_gate(table, 3, methods=["MEMIT"]).as_dict()}}
        record |= {"commit": "abc1234", "band": [3], "batch_size": 3, "written_with": with_}
        store.write_calibration(folder, record, {"write": table})
    assert chapter.settings_change_reading(tmp_path, "m").glue["m_g1_tuned_paired"] == "not run yet"  # no baseline
    reading = chapter.settings_change_reading(tmp_path, "m", "start")
    assert reading.glue["m_g1_tuned_paired"] == (
        "MEMIT reliability -0.300 ± 0.000, generality +0.000 ± 0.000, locality +0.000 ± 0.000"
    )
    assert chapter.settings_change_reading(tmp_path, "m", "elsewhere").glue["m_g1_tuned_paired"] == "not run yet"
    longer = json.loads(json.dumps(with_))
    longer["MEMIT"]["values"]["steps"] += 75
    record = store.read_calibration(tmp_path / "m" / "start") | {"written_with": longer}
    store.write_calibration(tmp_path / "m" / "start", record, {"write": starting})
    with pytest.raises(ValueError, match="different value steps for MEMIT"):
        chapter.settings_change_reading(tmp_path, "m", "start")
