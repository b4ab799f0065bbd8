"""The projector-action probe (``study.key_overlap``): the span shares on known vectors, and on the pocket
model's schedule the properties every projector must show before and after commits."""

import pytest
import torch

from langedit_mini.data.datasets import EditRequest
from langedit_mini.data.schedules import build_schedule
from langedit_mini.study.key_overlap import (
    PROJECTED,
    projector_action,
    shared_subjects,
    span_share,
)


def test_span_share_is_one_inside_zero_outside_and_the_squared_cosine_between():
    vectors = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]], dtype=torch.float64)  # span: the first two axes
    keys = torch.tensor([[2.0, 0.0, 1.0], [3.0, 0.0, 0.0], [0.0, 5.0, 1.0]], dtype=torch.float64)
    assert span_share(keys, vectors).tolist() == pytest.approx([1.0, 0.0, 0.5])
    assert span_share(keys, torch.cat([vectors, vectors.sum(1, keepdim=True)], 1)).tolist() == pytest.approx(
        [1.0, 0.0, 0.5]
    )  # the span, not the count: a dependent column adds nothing
    assert span_share(keys, vectors[:, :0]).tolist() == [0.0, 0.0, 0.0]  # no vectors: no share
    with pytest.raises(ValueError, match="norm 0"):
        span_share(torch.zeros(3, 1, dtype=torch.float64), vectors)
    with pytest.raises(ValueError, match="equal rows"):
        span_share(keys[:2], vectors)


def test_projector_action_on_the_pocket_schedule(pocket_testbed):
    """Before any commit the three projectors are AlphaEdit's P0; LangEdit-exact only adds protection, so it never
    leaves more of a key than P0 and its null space shrinks by each batch's rank; AlphaEdit's projector never
    changes; the same-fact and other-fact key counts follow the parallel schedule."""
    schedule = build_schedule(
        pocket_testbed.requests, "delta", ("en", "de", "nl"), edits_per_language=4, batch_size=2, facts="parallel"
    )
    layers = [0]
    frame = projector_action(
        pocket_testbed.model, pocket_testbed.tokenizer, schedule.batches, pocket_testbed.statistics(layers), "pocket"
    )
    assert len(frame) == len(schedule.batches) * len(PROJECTED) and frame.exact_keys.all()
    kept = frame.pivot_table(index="batch", columns="method", values="kept")
    assert kept.loc[0].tolist() == pytest.approx([kept.loc[0, "AlphaEdit"]] * 3, abs=1e-9)
    assert 0 < kept.loc[0, "AlphaEdit"] < 1
    assert (kept["LangEdit-exact"] <= kept["AlphaEdit"] + 1e-9).all() and (kept["LangEdit-exact"] < 1).all()
    null = frame.pivot_table(index="batch", columns="method", values="null_dim")
    assert null["AlphaEdit"].nunique() == 1
    assert null["LangEdit-exact"].diff().dropna().tolist() == [-2.0] * (len(schedule.batches) - 1)  # rank 2 each
    one = frame[frame.method == "AlphaEdit"].set_index("batch")
    # batches: en F1, de F1, nl F1, en F2, de F2, nl F2 (F: two facts)
    assert one.same_fact_keys.tolist() == [0, 2, 4, 0, 2, 4]
    assert one.other_fact_keys.tolist() == [0, 0, 0, 6, 6, 6]
    assert one.in_same_facts.isna().tolist() == [True, False, False, True, False, False]
    assert one.in_same_facts.dropna().between(0, 1).all() and one.in_other_facts.iloc[3:].between(0, 1).all()


def test_projector_action_refuses_methods_without_a_projector_and_empty_batches(pocket_testbed):
    with pytest.raises(ValueError, match="projected methods"):
        projector_action(None, None, [[object()]], {}, "pocket", methods=["MEMIT"])
    with pytest.raises(ValueError, match="non-empty"):
        projector_action(None, None, [[]], {}, "pocket")


def test_the_script_reads_a_points_schedule_and_writes_rows_and_provenance(pocket_testbed, tmp_path):
    """``scripts/projector_action.py`` on the pocket study's e007 (6 batches of 7, one per language): one row per
    batch and projected method, the schedule's facts recorded; without committed runs the grid's plan gives the same
    schedule; a point outside the grid is a clear error."""
    import importlib.util
    import json
    from pathlib import Path

    import pandas as pd

    path = Path(__file__).resolve().parents[1] / "scripts" / "projector_action.py"
    spec = importlib.util.spec_from_file_location("projector_action", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.testbed_from = lambda parser, args: pocket_testbed
    script.main(["--point", "e007", "--output", str(tmp_path)])
    frame = pd.read_csv(tmp_path / "e007-seed0.csv")
    info = json.loads((tmp_path / "e007-seed0.json").read_text())
    assert len(frame) == 6 * len(PROJECTED) and frame.lang.drop_duplicates().tolist() == list(
        info["parameters"]["languages"]
    )
    assert len(info["batches"]) == 6 and all(batch == info["batches"][0] for batch in info["batches"])  # parallel facts
    assert frame[frame.batch == 5].same_fact_keys.unique().tolist() == [35]  # the fact in the five languages before
    assert [row["lang"] for row in info["shared_subjects"]] == ["de", "nl", "es", "fr", "zh"]
    assert info["schedule_from"].endswith("e007/provenance.json")
    # Without committed runs the script takes the plan the density runner would run there: the same schedule.
    script.ROOT = tmp_path / "no-runs"
    script.main(["--point", "e007", "--output", str(tmp_path / "grid")])
    from_grid = json.loads((tmp_path / "grid" / "e007-seed0.json").read_text())
    assert from_grid["schedule_from"].startswith("density grid")
    assert from_grid["batches"] == info["batches"]
    assert pd.read_csv(tmp_path / "grid" / "e007-seed0.csv").equals(frame)
    with pytest.raises(SystemExit):
        script.main(["--point", "e999", "--output", str(tmp_path)])


def test_shared_subjects_counts_the_facts_whose_subject_text_is_the_english_one():
    def request(fact, lang, subject):
        return EditRequest(prompt="{} is in", subject=subject, target="x", lang=lang, fact_id=fact)

    requests = [request("a", "en", "Paris"), request("b", "en", "Rome"), request("a", "de", "Paris")]
    requests += [request("b", "de", "Rom"), request("a", "zh", "巴黎"), request("c", "zh", "Only here")]
    table = shared_subjects(requests).set_index("lang")
    assert table.loc["de"].tolist() == [2, 1, 0.5] and table.loc["zh"].tolist() == [1, 0, 0.0]  # c: not in en
    with pytest.raises(ValueError, match="reference language 'fr'"):
        shared_subjects(requests, reference="fr")
