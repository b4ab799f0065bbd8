"""Tuning every method with the same budget, on facts the study never edits.

A baseline tuned less than the method it is compared with makes any comparison meaningless. So every
method gets the same number of configurations (``GRID_SIZE``) of its own main settings (``GRIDS``: a
first grid of 8, then 4 more by one rule for all, ``STAGE_2``),
each run as one sequential study on the tuning split (``data.schedules.split_facts``: facts set aside
by a hash of their ids, never edited by the study) at the study's operating point (its edits per
language, batch size, schedule and languages), and the configuration with the best ``objective``
(the mean final reliability, generality and locality, teacher-forced) is chosen.

``tuning_run`` runs one configuration and returns one row of scores; ``choose`` picks per method.
``scripts/tune.py`` runs the grid resumably and writes the chosen settings into the model's
hyperparameter file (its ``methods`` section).
"""

from __future__ import annotations

import itertools
import time
import warnings

import pandas as pd

from langedit_mini.editing.registry import METHODS
from langedit_mini.editing.session import UnreachedTargetWarning
from langedit_mini.study.experiment import after_last_batch, run_study

#: configurations per method: the same for every method (the tuning budget), in two stages
GRID_SIZE = 12
_NULL_SPACE = [
    {"leftover_fraction": leftover, "alpha": alpha}
    for leftover, alpha in itertools.product((0.02, 0.05, 0.1, 0.2), (30.0, 300.0))
]
#: stage 1, 8 configurations each: every method's main settings (the cut and the regulariser of the null-space
#: methods, MEMIT's weight on C0, FT's learning rate and norm bound); the target values are shared and fixed
STAGE_1 = {
    "FT": [
        {"learning_rate": lr, "norm_constraint": bound}
        for lr, bound in itertools.product((1e-3, 5e-3), (1e-2, 5e-2, 2e-1, 1.0))
    ],
    "MEMIT": [{"mom2_weight": weight} for weight in (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)],
    "AlphaEdit": _NULL_SPACE,
    "LangEdit-published": _NULL_SPACE,
    "LangEdit-exact": _NULL_SPACE,
}
#: stage 2, 4 more each, by one rule for every method after stage 1: where a method's best configuration lay on
#: an edge of its grid, one step beyond it (each null-space method's best was the corner leftover 0.2, alpha 300;
#: FT's the corner lr 1e-3, bound 0.01); where it lay inside (MEMIT's, 100), a finer grid around it
_NULL_SPACE_BEYOND = [
    {"leftover_fraction": leftover, "alpha": alpha}
    for leftover, alpha in ((0.1, 3000.0), (0.2, 3000.0), (0.4, 300.0), (0.4, 3000.0))
]
STAGE_2 = {
    "FT": [
        {"learning_rate": lr, "norm_constraint": bound}
        for lr, bound in ((3e-4, 1e-2), (1e-3, 3e-3), (3e-4, 3e-3), (1e-3, 1e-3))
    ],
    "MEMIT": [{"mom2_weight": weight} for weight in (50.0, 70.0, 150.0, 200.0)],
    "AlphaEdit": _NULL_SPACE_BEYOND,
    "LangEdit-published": _NULL_SPACE_BEYOND,
    "LangEdit-exact": _NULL_SPACE_BEYOND,
}
GRIDS = {method: STAGE_1[method] + STAGE_2[method] for method in STAGE_1}
#: the metrics whose final mean (teacher-forced) the objective averages
OBJECTIVE_METRICS = ("reliability", "generality", "locality")


def config_name(config: dict) -> str:
    """A configuration as text: ``alpha=30 leftover_fraction=0.02``."""
    return " ".join(f"{name}={value:g}" for name, value in sorted(config.items()))


def tuning_run(model, tokenizer, requests, statistics, method: str, config: dict, *, point: dict, seed: int = 0):
    """One configuration of ``method`` as a sequential study of ``requests`` (the tuning split) at ``point``
    (``edits_per_language``, ``batch_size``, ``languages``, ``facts``, ``model_name``): one row with the
    final reliability / generality / locality (TF and EM), the share written right after each batch's
    own write, the unreached target values, the objective and the seconds taken."""
    start = time.perf_counter()
    batches = point["edits_per_language"] * len(point["languages"]) // point["batch_size"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreachedTargetWarning)
        study = run_study(
            model,
            tokenizer,
            requests,
            statistics,
            methods=[method],
            seeds=[seed],
            languages=point["languages"],
            edits_per_language=point["edits_per_language"],
            batch_size=point["batch_size"],
            overrides=config,
            model_name=point["model_name"],
            facts=point["facts"],
            evaluate_every=max(batches, 2),  # the final model, and each batch right after its write
            log=None,
        )
    final = after_last_batch(study.evaluations)
    row = {"method": method, "config": config_name(config), **{f"set {k}": v for k, v in config.items()}}
    for metric in OBJECTIVE_METRICS:
        part = final[final.metric == metric]
        row[f"{metric} TF"] = float(part.teacher_forced.mean())
        row[f"{metric} EM"] = float(part.exact_match.mean())
    evaluations = study.evaluations
    own = evaluations[(evaluations.after_batch == evaluations.batch) & (evaluations.metric == "reliability")]
    row["written TF"] = float(own.teacher_forced.mean())
    row["unreached"] = int(study.batches.unreached.sum())
    row["objective"] = objective(row)
    row["seconds"] = time.perf_counter() - start
    return row


def objective(row) -> float:
    """The mean of the final teacher-forced reliability, generality and locality."""
    return sum(float(row[f"{metric} TF"]) for metric in OBJECTIVE_METRICS) / len(OBJECTIVE_METRICS)


def choose(runs: pd.DataFrame) -> dict[str, dict]:
    """Per method (in ``METHODS`` order): the configuration with the largest objective (the first of equals,
    in grid order), as ``{"config": {...}, "objective": float, "runs": int}``. A method whose grid is not
    complete in ``runs`` is an error: a choice from part of the budget is not the same budget."""
    chosen = {}
    for method in [m for m in METHODS if m in set(runs.method)]:
        part = runs[runs.method == method]
        names = [config_name(c) for c in GRIDS[method]]
        missing = sorted(set(names) - set(part.config))
        if missing:
            raise ValueError(f"{method}: {len(missing)} of its {len(names)} configurations not run ({missing[0]}, ...)")
        part = part.set_index("config").loc[names]
        best = part.objective.idxmax()
        chosen[method] = {
            "config": GRIDS[method][names.index(best)],
            "objective": float(part.objective.max()),
            "runs": len(names),
        }
    return chosen
