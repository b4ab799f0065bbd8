"""The density study's plan and readers, and the equal-budget tuning's choice."""

import math

import pandas as pd
import pytest

from langedit_mini.study.density import (
    DENSITY_GRIDS,
    PAPER_DENSITY,
    density,
    density_plan,
    point_arguments,
)
from langedit_mini.study.tuning import GRID_SIZE, GRIDS, choose, config_name, objective


def test_the_grid_spans_the_regimes_and_keeps_the_papers_batch_ratio():
    grid = DENSITY_GRIDS["pocket"]
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
    plan = density_plan("pocket", seeds=[0, 1, 2])
    assert [step["point"] for step in plan[:2]] == ["e028", "e028-mt"]
    assert all(step["seeds"] == [0, 1, 2] and step["evaluate_every"] == 1 for step in plan[:2])
    seed0 = [step for step in plan[2:] if step["seeds"] == [0]]
    later = [step for step in plan[2:] if step["seeds"] == [1, 2]]
    assert (
        [s["point"] for s in seed0] == [s["point"] for s in later] == ["e007", "e014", "e049", "e077", "e098", "e140"]
    )
    assert plan.index(seed0[-1]) < plan.index(later[0])  # seed 0 everywhere before the other seeds
    # about eight full evaluations per run away from the paper's point, the probes after the last batch
    e140 = seed0[-1]
    assert e140["evaluate_every"] == 120 // 8 and e140["probe_every"] == 120
    assert density_plan("pocket", points=["e049"], seeds=[3]) == [
        {
            "point": "e049",
            "edits_per_language": 49,
            "schedule": "delta",
            "seeds": [3],
            "evaluate_every": 5,
            "probe_every": 42,
        }
    ]
    with pytest.raises(ValueError, match="unknown points \\['e050'\\]"):
        density_plan("pocket", points=["e050"])
    with pytest.raises(ValueError, match="no density grid"):
        density_plan("llama")


def test_a_step_becomes_the_study_commands_arguments(tmp_path):
    step = density_plan("pocket", points=["e028-mt"], seeds=[1])[0]
    arguments = point_arguments("pocket", step, tmp_path)
    pairs = dict(zip(arguments[::2], arguments[1::2]))
    assert pairs["--schedule"] == "mt" and pairs["--batch-size"] == "7" and pairs["--facts"] == "parallel"
    assert pairs["--edits-per-language"] == "28" and pairs["--tuning-facts"] == "200"
    assert pairs["--output"] == str(tmp_path / "e028-mt") and pairs["--seeds"] == "1"


def test_every_method_gets_the_same_tuning_budget():
    assert set(GRIDS) == {"FT", "MEMIT", "AlphaEdit", "LangEdit-published", "LangEdit-exact"}
    assert all(len(grid) == GRID_SIZE for grid in GRIDS.values())
    assert all(len({config_name(c) for c in grid}) == GRID_SIZE for grid in GRIDS.values())  # distinct


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
    with pytest.raises(ValueError, match="MEMIT: 1 of its 8 configurations not run"):
        choose(runs.iloc[:-1])
