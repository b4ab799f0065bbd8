"""Tuning every method with the same budget, on facts the study never edits.

A baseline tuned less than the method it is compared with makes any comparison meaningless. So every
method gets the same number of configurations (``GRID_SIZE``) of its own main settings (``GRIDS``: a
first grid of 8, then 4 more by one rule for all, ``STAGE_2``),
each run as one sequential study on the tuning split (``data.schedules.split_facts``: facts set aside
by a hash of their ids, never edited by the study) at the study's operating point (its edits per
language, batch size, schedule and languages), and the configuration with the best ``objective``
(the mean final reliability, generality and locality, teacher-forced) is chosen.

``tuning_run`` runs one configuration and returns one row of scores and every request's final scores;
``unedited_run`` scores the unedited model the same way, the floor of the objective (what a configuration that
writes nothing scores), and ``against_unedited`` says how far each configuration moved from it, request by
request; ``method_margins`` pairs two methods run on one grid (the two LangEdit forms) by request;
``choose`` picks per method and ``runner_up_margin`` says by how much, paired by request; ``tune`` runs a
testbed's grid resumably (one row of ``runs.csv`` and the requests' scores in ``scores.csv`` per
configuration, ``store``), records the choice with its margin and its provenance and, asked to, writes it
into the testbed's hyperparameter file (``apply_choices``); ``recheck`` reruns, with today's code, the best
row of each method among the rows made by older code.
"""

from __future__ import annotations

import itertools
import json
import time
import warnings
from pathlib import Path

import pandas as pd

from langedit_mini.editing.defaults import HPARAMS_DIRECTORY, MODEL_NAMES
from langedit_mini.editing.registry import METHODS
from langedit_mini.editing.session import UnreachedTargetWarning
from langedit_mini.study import store
from langedit_mini.study.experiment import StudyPlan, check_methods, run_study
from langedit_mini.study.intervals import after_last_batch
from langedit_mini.study.provenance import (
    EQUIVALENCES,
    ROOT,
    finish_record,
    is_current,
    read_equivalences,
    record_equivalence,
    start_record,
)

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
#: the grids by the stages they go to. Stage 2's points are the rule's output on the pocket model's stage 1: on
#: another testbed they are not that rule, so a testbed on which the two stages do not fit (a real LLM on 2 cores:
#: one configuration of SmolLM2 at the paper's density is a sequential study of 264 edits, about 25 minutes) is
#: tuned with stage 1 alone, the same 8 configurations for every method, and says so in its record
STAGES = {1: STAGE_1, 2: GRIDS}
#: where the study's runs of each testbed lie (``scripts/run_density.py``): an ``apply`` checks them
DENSITY_RESULTS = ROOT / "results" / "density"
#: the metrics whose final mean (teacher-forced) the objective averages
OBJECTIVE_METRICS = ("reliability", "generality", "locality")


def config_name(config: dict) -> str:
    """A configuration as text: ``alpha=30 leftover_fraction=0.02``."""
    return " ".join(f"{name}={value:g}" for name, value in sorted(config.items()))


def grid_edges(config: dict, grid: list[dict]) -> list[str]:
    """The settings of ``config`` that sit at an edge of ``grid`` (the smallest or largest value the grid gives
    that setting, among two or more), as text: ``["mom2_weight 10000, the largest tried"]``. A choice at an edge may
    have a better value beyond it, which the grid did not try."""
    edges = []
    for name, value in sorted(config.items()):
        values = sorted({entry[name] for entry in grid if name in entry})
        if len(values) > 1 and value in (values[0], values[-1]):
            edges.append(f"{name} {value:g}, the {'smallest' if value == values[0] else 'largest'} tried")
    return edges


SCORE_COLUMNS = ("method", "config", "lang", "fact_id", "batch", "metric", "teacher_forced", "exact_match")


def tuning_run(
    testbed, requests, method: str, config: dict, *, plan: StudyPlan, seed: int = 0
) -> tuple[dict, pd.DataFrame]:
    """One configuration of ``method`` as a sequential study of ``requests`` (the tuning split) with ``plan``
    (its probes and evaluations replaced: the final model is scored, and each batch right after its write):
    one row with the final reliability / generality / locality (TF and EM), the share written right after
    each batch's own write, the unreached target values, the objective and the seconds taken; and the final
    score of every request and metric of the objective (``SCORE_COLUMNS``), which lets two configurations be
    compared paired by request (``config_margin``)."""
    from dataclasses import replace

    from langedit_mini.editing.defaults import default_config

    start = time.perf_counter()
    plan = replace(plan, evaluate_every=max(plan.batches(), 2), overrides=config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnreachedTargetWarning)
        study = run_study(
            testbed.model,
            testbed.tokenizer,
            requests,
            testbed.statistics(default_config(method, testbed.hparams).layers),
            plan,
            methods=[method],
            seeds=[seed],
            hparams=testbed.hparams,
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
    scores = final[final.metric.isin(OBJECTIVE_METRICS)].assign(config=row["config"])
    return row, scores[list(SCORE_COLUMNS)].reset_index(drop=True)


#: the name the unedited model's row and scores go by (``unedited_run``)
UNEDITED = "unedited"


def unedited_run(testbed, requests, *, plan: StudyPlan, seed: int = 0) -> tuple[dict, pd.DataFrame]:
    """The objective's floor: the unedited model scored on the requests every configuration's run edits (the
    same schedule of ``requests`` by ``plan`` and ``seed``), as ``tuning_run`` scores a configuration's final
    model, one row and every request's scores (``SCORE_COLUMNS``; method and config ``UNEDITED``). Its
    locality is 1 by construction (the reference is its own answer) and what it reads on a batch "right after
    its write" is its reliability: a configuration that writes nothing scores this row, so an objective near it
    says the method did not edit, not that it edited and forgot."""
    from langedit_mini.data.schedules import build_schedule
    from langedit_mini.evaluation.edit_metrics import evaluate_requests, locality_reference

    start = time.perf_counter()
    schedule = build_schedule(
        requests,
        plan.schedule,
        plan.languages,
        edits_per_language=plan.edits_per_language,
        batch_size=plan.batch_size,
        seed=seed,
        facts=plan.facts,
    )
    edited = schedule.requests
    model, tokenizer = testbed.model, testbed.tokenizer
    frame = evaluate_requests(model, tokenizer, edited, locality_reference(model, tokenizer, edited))
    frame = frame[frame.metric.isin(OBJECTIVE_METRICS)]
    batch_of = {(r.fact_id, r.lang): index for index, batch in enumerate(schedule.batches) for r in batch}
    batches = [batch_of[(fact, lang)] for fact, lang in zip(frame.fact_id, frame.lang)]
    scores = frame.assign(method=UNEDITED, config=UNEDITED, batch=batches)
    row = {"method": UNEDITED, "config": UNEDITED}
    for metric in OBJECTIVE_METRICS:
        part = scores[scores.metric == metric]
        row[f"{metric} TF"] = float(part.teacher_forced.mean())
        row[f"{metric} EM"] = float(part.exact_match.mean())
    row["written TF"] = row["reliability TF"]  # nothing written: each batch reads what the model knew
    row["unreached"] = 0
    row["objective"] = objective(row)
    row["seconds"] = time.perf_counter() - start
    return row, scores[list(SCORE_COLUMNS)].reset_index(drop=True)


def against_unedited(scores: pd.DataFrame, unedited: pd.DataFrame, *, tolerance: float = 1e-4) -> pd.DataFrame:
    """Per (method, config) of the tuning's per-request ``scores``, against the unedited model's scores on the
    same requests (``unedited_run``): per metric of the objective, the mean change of the final teacher-forced
    score and how many requests it moved by more than ``tolerance``, and ``moved``, the requests moved in any
    metric, of ``requests``. A configuration that moved none left every tuning fact as the unedited model reads
    it: it wrote nothing that lasted, or nothing at all. An error when a configuration was scored on requests
    the unedited model's scores do not hold."""
    keys = ["lang", "fact_id", "metric"]
    base = unedited.set_index(keys).teacher_forced
    rows = {}
    for (method, config), part in scores.groupby(["method", "config"], sort=False):
        part = part.set_index(keys).teacher_forced
        missing = part.index.difference(base.index)
        if len(missing):
            raise ValueError(
                f"{method} {config} has {len(missing)} scores (request, metric) the unedited model has not (first:"
                f" {missing[0]}): the two were not scored on the same tuning split"
            )
        change = part - base.loc[part.index]
        moved = change.abs() > tolerance
        row = {}
        for metric in OBJECTIVE_METRICS:
            of = change.index.get_level_values("metric") == metric
            row[f"{metric} change"] = float(change[of].mean())
            row[f"{metric} moved"] = int(moved[of].sum())
        requests = moved.groupby(level=["lang", "fact_id"]).any()
        rows[(method, config)] = row | {"moved": int(requests.sum()), "requests": len(requests)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["method", "config"]) if rows else table.index
    return table


def method_margins(scores: pd.DataFrame, first: str, second: str) -> pd.DataFrame:
    """Per configuration both ``first`` and ``second`` ran (two methods of one grid, as the two LangEdit forms):
    ``first`` minus ``second``, paired by request over the tuning's per-request ``scores``, of the objective and
    of each of its metrics, as ``format_interval`` writes a mean and its 95% half-width (``bands.band_margin``;
    one seed, so the interval is the noise of which facts were drawn), and the number of pairs."""
    from langedit_mini.study.bands import band_margin
    from langedit_mini.study.intervals import format_interval

    both = scores[scores.method.isin([first, second])]
    rows = {}
    for config, part in both.groupby("config", sort=False):
        if part.method.nunique() < 2:
            continue
        part = part.assign(form=part.method, method="both")
        row = {}
        for name, metrics in (("objective", None), *((metric, (metric,)) for metric in OBJECTIVE_METRICS)):
            mean, half, pairs = band_margin(part, first, second, metrics=metrics, by="form")
            row[name] = format_interval(mean, half, signed=True)
        rows[config] = row | {"pairs": pairs}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("config")


def config_margin(scores: pd.DataFrame, method: str, first: str, second: str) -> tuple[float, float, int]:
    """The objective of ``method``'s configuration ``first`` minus that of ``second`` (names as
    ``config_name`` gives them), paired by request over the tuning's per-request ``scores``: the mean, the
    half-width of its 95% interval and the number of pairs (``bands.band_margin``; one seed, so the interval is
    the noise of which facts were drawn)."""
    from langedit_mini.study.bands import band_margin

    return band_margin(scores[scores.method == method], first, second, by="config")


def _runner_up(runs: pd.DataFrame, method: str, choice: dict, grids: dict) -> str | None:
    """The best configuration of ``method``'s grid after its choice, by objective; None when the grid has no other."""
    names = [config_name(c) for c in grids[method]]
    part = runs[(runs.method == method) & runs.config.isin(names)].sort_values("objective", ascending=False)
    others = part[part.config != config_name(choice["config"])]
    return None if others.empty else str(others.config.iloc[0])


def runner_up_margin(runs: pd.DataFrame, scores: pd.DataFrame, method: str, choice: dict, grids: dict) -> dict | None:
    """The chosen configuration of ``method`` (``choose``) against the runner-up of its grid, paired by request
    (``config_margin``): ``{"runner_up", "mean", "half_width", "pairs"}``; None when ``scores`` lacks either
    (rows made before the tuning kept per-request scores)."""
    chosen, runner_up = config_name(choice["config"]), _runner_up(runs, method, choice, grids)
    if runner_up is None:
        return None
    have = set(scores[scores.method == method].config)
    if chosen not in have or runner_up not in have:
        return None
    mean, half, pairs = config_margin(scores, method, chosen, runner_up)
    return {"runner_up": runner_up, "mean": mean, "half_width": half, "pairs": pairs}


def rescore(testbed, requests, runs, scores, output, method, choice, grids, *, plan, made_by, seed=0, log=print):
    """Rerun ``method``'s chosen configuration and its runner-up where ``scores`` lacks them (rows made before
    the tuning kept per-request scores) and add their scores, made by today's code, to ``scores.csv``; the
    rows stay as they were; ``made_by`` is today's code (``package_hash``). A rerun whose objective differs
    from its row's is an error: the scores would not be those of the row the choice was made from."""
    names = [config_name(c) for c in grids[method]]
    runner_up = _runner_up(runs, method, choice, grids)
    objectives = runs[runs.method == method].set_index("config").objective
    for name in [config_name(choice["config"])] + ([runner_up] if runner_up else []):
        if name in set(scores[scores.method == method].config):
            continue
        row, scored = tuning_run(testbed, requests, method, grids[method][names.index(name)], plan=plan, seed=seed)
        then = float(objectives[name])
        log(f"rescore {method} {name}: objective {then:.6f} then, {row['objective']:.6f} now")
        if abs(row["objective"] - then) > 1e-9:
            raise ValueError(
                f"{method} {name}: the rerun's objective {row['objective']:.6f} is not its row's {then:.6f}; "
                "its scores cannot stand for that row (the same machine and threads reproduce a row exactly)"
            )
        scores = pd.concat([scores, scored.assign(package_hash=made_by)], ignore_index=True)
        store.write_tuning_scores(output, scores)
    return scores


def objective(row) -> float:
    """The mean of the final teacher-forced reliability, generality and locality."""
    return sum(float(row[f"{metric} TF"]) for metric in OBJECTIVE_METRICS) / len(OBJECTIVE_METRICS)


def choose(runs: pd.DataFrame, grids: dict = GRIDS) -> dict[str, dict]:
    """Per method (in ``METHODS`` order): the configuration of its grid in ``grids`` with the largest objective
    (the first of equals, in grid order), as ``{"config": {...}, "objective": float, "runs": int}``. A method
    whose grid is not complete in ``runs`` is an error: a choice from part of the budget is not the same
    budget. Rows of configurations outside the grid (a later stage's) are left out."""
    chosen = {}
    for method in [m for m in METHODS if m in set(runs.method)]:
        part = runs[runs.method == method]
        names = [config_name(c) for c in grids[method]]
        missing = sorted(set(names) - set(part.config))
        if missing:
            raise ValueError(f"{method}: {len(missing)} of its {len(names)} configurations not run ({missing[0]}, ...)")
        part = part.set_index("config").loc[names]
        best = part.objective.idxmax()
        chosen[method] = {
            "config": grids[method][names.index(best)],
            "objective": float(part.objective.max()),
            "runs": len(names),
        }
    return chosen


def earlier_choices(finished: dict | None, point: dict, stage: int, methods, log=print) -> tuple[dict, dict]:
    """The grids and choices of an earlier ``tuning.json`` (``finished``: ``store.read_tuning``) for the methods
    not in ``methods``, when it tuned at the same ``point`` and ``stage``; each kept choice names the commit that
    made it (``kept_from``). A record of another point or stage is replaced, and ``log`` says which choices go."""
    if not finished:
        return {}, {}
    record = finished["record"]
    others = [m for m in record.get("chosen", {}) if m not in methods]
    if not others:
        return {}, {}
    if record.get("point") != point or record.get("stage") != stage:
        log(f"tuning.json tuned {', '.join(others)} at another point or stage: their choices are not kept")
        return {}, {}
    grids = {m: record["grids"][m] for m in others}
    chosen = {m: {"kept_from": record.get("commit", "unknown")} | record["chosen"][m] for m in others}
    return grids, chosen


def hparams_path(hparams: str) -> Path:
    """The file of a hyperparameter name (``MODEL_NAMES``) or path."""
    return HPARAMS_DIRECTORY / f"{hparams}.json" if hparams in MODEL_NAMES else Path(hparams)


def _write_hparams(path: Path, data: dict) -> Path:
    """A hyperparameter file, one field per line (the layout of the shipped files)."""
    lines = ["{"] + [
        f" {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}," for k, v in data.items()
    ]
    lines[-1] = lines[-1].rstrip(",")
    path.write_text("\n".join(lines + ["}"]) + "\n", encoding="utf-8")
    return path


def set_hparams_field(hparams: str, name: str, value) -> Path:
    """Set one field of the hyperparameter file ``hparams`` (e.g. the measured ``prompt_format``)."""
    path = hparams_path(hparams)
    return _write_hparams(path, json.loads(path.read_text(encoding="utf-8")) | {name: value})


def apply_choices(hparams: str, chosen: dict, output: Path, *, stage: int = 2) -> Path:
    """Write ``chosen`` into the hyperparameter file ``hparams`` (its ``methods``), saying where it came from.
    Methods not in ``chosen`` keep what the file gives them: a stage tuned for some methods (a real LLM's
    MEMIT and AlphaEdit first) does not erase another's settings."""
    path = hparams_path(hparams)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["methods"] = data.get("methods", {}) | {method: choice["config"] for method, choice in chosen.items()}
    marker = " Per-method settings (methods):"
    note = data["note"].split(marker)[0]
    root = HPARAMS_DIRECTORY.parents[2]
    where = output.relative_to(root) if output.resolve().is_relative_to(root) else output
    size = len(next(iter(STAGES[stage].values())))
    data["note"] = (
        f"{note}{marker} {', '.join(data['methods'])} tuned with the same budget ({size} configurations each, "
        f"stage {stage} of study.tuning) on the tuning split by scripts/tune.py ({where})."
    )
    return _write_hparams(path, data)


def runs_kept_by_apply(
    before_text: str,
    path: Path,
    before: str,
    after: str,
    *,
    runs_root: Path,
    equivalences: Path = EQUIVALENCES,
    log=print,
) -> dict | None:
    """After ``apply_choices`` rewrote the hyperparameter file ``path`` (``before_text`` was its text), the
    testbed's run hash moved from ``before`` to ``after``: the file is one input of every run's hash, although
    a run of one method reads only the shared fields and its own section (``editing.defaults.load_hparams``).
    When every run under ``runs_root`` (``<point>/parts/<run>``) current under ``before`` is of a method whose
    settings ``load_hparams`` gives the same from both files, those runs compute what ``after`` computes:
    record ``before`` as equivalent to ``after`` (``provenance.record_equivalence``) with that comparison as
    the evidence, and return the record. With no run current under ``before`` there is nothing to keep (None);
    otherwise record nothing, name the runs whose settings changed (they and every other run of ``before`` go
    stale: the hash covers the whole file) and return None."""
    import tempfile

    from langedit_mini.editing.defaults import load_hparams, prompt_format

    if before == after:
        return None  # the file is not an input of the hash (a hyperparameter file the project does not ship)
    known = read_equivalences(equivalences)
    runs = [
        (f"{folder.name}/{part.name}", record)
        for folder in sorted(Path(runs_root).glob("*"))
        for part, record in store.read_parts(folder)[0]
        if is_current(record.get("package_hash", ""), before, known)
    ]
    if not runs:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / path.name
        old.write_text(before_text, encoding="utf-8")
        asked_alike = prompt_format(old) == prompt_format(path)
        same = {
            method: asked_alike and load_hparams(old, method) == load_hparams(path, method)
            for method in sorted({record["method"] for _, record in runs})
        }
    changed = [name for name, record in runs if not same[record["method"]]]
    if changed:
        log(
            f"{len(changed)} run(s) under {runs_root} read settings this change replaced ({', '.join(changed)}): "
            f"they, and the {len(runs) - len(changed)} other run(s) of {before}, are stale under {after}"
        )
        return None
    sections = [json.loads(text).get("methods", {}) for text in (before_text, path.read_text(encoding="utf-8"))]
    evidence = [
        {
            "kind": "hyperparameter file rewritten by tuning.apply_choices",
            "file": path.name,
            "sections changed": sorted(
                m for m in {*sections[0], *sections[1]} if sections[0].get(m) != sections[1].get(m)
            ),
            "runs": [name for name, _ in runs],
            "methods of those runs, settings unchanged": sorted(same),
        }
    ]
    log(f"{before} recorded as equivalent to {after}: {len(runs)} run(s) read settings the change left alone")
    return record_equivalence(before, after, evidence, equivalences)[before]


def _config_of(row) -> dict:
    """The configuration a row of ``runs.csv`` ran (its ``set <name>`` columns)."""
    return {k[4:]: row[k] for k in row.index if k.startswith("set ") and pd.notna(row[k])}


def recheck(testbed, requests, runs: pd.DataFrame, output, *, plan: StudyPlan, methods, seed=0, log=print):
    """Rerun the best row of each (method, code version older than the last row's) with today's code and
    write ``recheck.csv`` (objective then and now)."""
    current = testbed.current_hash()
    earlier = runs[runs.method.isin(methods) & (runs.package_hash != runs.package_hash.iloc[-1])]
    picked = earlier.loc[earlier.groupby(["method", "package_hash"]).objective.idxmax()]
    rows = []
    for _, old in picked.iterrows():
        row, _ = tuning_run(testbed, requests, old.method, _config_of(old), plan=plan, seed=seed)
        rows.append(
            {"method": old.method, "config": old.config, "made by": old.package_hash}
            | {"objective then": old.objective, "rerun by": current, "objective now": row["objective"]}
            | {"difference": row["objective"] - old.objective}
        )
        log(
            f"recheck {old.method} {old.config} (made by {old.package_hash}): {old.objective:.4f} then, "
            f"{row['objective']:.4f} now"
        )
        store.write_table(Path(output) / "recheck.csv", pd.DataFrame(rows))
    return pd.DataFrame(rows)


def tuning_seconds(runs: pd.DataFrame, grid_names: dict, unedited: dict | None) -> dict:
    """The computing a tuning record stands for, over every invocation that made its rows: ``wall_s``, the
    seconds of the rows of ``runs`` in the recorded grids (``grid_names``: method to configuration names) and of
    the unedited model's scoring (``unedited``: ``store.read_tuning_unedited``), and ``untimed_rows``, how many
    of those rows carry no time (counted, not guessed). An invocation that only chooses or applies adds none."""
    inside = pd.Series(False, index=runs.index)
    for method, names in grid_names.items():
        inside |= (runs.method == method) & runs.config.isin(names)
    seconds = runs.loc[inside, "seconds"] if "seconds" in runs else pd.Series(float("nan"), index=runs.index[inside])
    total = float(seconds.sum()) + (float(unedited["row"].get("seconds", 0.0)) if unedited else 0.0)
    return {"wall_s": round(total, 1), "untimed_rows": int(seconds.isna().sum())}


def tune(
    testbed,
    output,
    plan: StudyPlan,
    *,
    tuning_facts: int,
    methods=METHODS,
    configs: int | None = None,
    seed: int = 0,
    apply: bool = False,
    rechecking: bool = False,
    rescoring: bool = False,
    stage: int = 2,
    runs_root: Path = DENSITY_RESULTS,
    unedited_only: bool = False,
    log=print,
) -> dict:
    """Every configuration of the grids up to ``stage`` (``STAGES``; the first ``configs`` of each: a smoke test,
    no choice made) of ``methods`` on the testbed's tuning split (``tuning_facts`` facts) with ``plan``, resumably
    into ``output``; returns the record written to ``tuning.json`` (the stage, the grid, the choice, the
    provenance, the time of every row it stands for: ``tuning_seconds``), or the recheck's table with
    ``rechecking``. ``apply`` writes the choice into the hyperparameter file and keeps the testbed's runs under
    ``runs_root`` current when they read none of what changed (``runs_kept_by_apply``). Before the first
    configuration, the unedited model is scored on the same requests (``unedited_run``, ``unedited.json`` and
    ``unedited_scores.csv``; once per folder); ``unedited_only`` stops there and returns its row. ``rescoring``
    reruns a choice or its runner-up whose row was made before the tuning kept per-request scores, so that the
    choice's lead can be paired by request (``rescore``)."""
    from langedit_mini.data.schedules import split_facts

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {sorted(STAGES)}, got {stage!r}")
    grids = STAGES[stage]
    methods = check_methods(methods)
    if configs is not None and (not isinstance(configs, int) or configs < 1):
        raise ValueError(f"configs must be None or a positive integer, got {configs!r}")
    if apply and configs is not None:
        raise ValueError("apply needs every configuration: a choice from part of a grid is not the same budget")
    output = Path(output)
    runs = store.read_tuning_runs(output)
    scores = store.read_tuning_scores(output)
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    requests = [r for r in testbed.requests if r.lang in set(plan.languages)]
    _, requests = split_facts(requests, tuning_facts)
    if store.read_tuning_unedited(output) is None:  # the floor every configuration is read against
        row, scored = unedited_run(testbed, requests, plan=plan, seed=seed)
        row |= finish_record(record)  # the commit, the code's hash, the machine
        store.write_tuning_unedited(output, row, scored)
        means = " ".join(f"{m} {row[f'{m} TF']:.3f}" for m in OBJECTIVE_METRICS)
        log(f"unedited: objective {row['objective']:.3f} {means}, {row['seconds']:.0f} s")
    if unedited_only:
        return {"unedited": store.read_tuning_unedited(output)["row"]}
    for method in methods:
        for config in grids[method][:configs]:
            if ((runs.method == method) & (runs.config == config_name(config))).any():
                continue
            row, scored = tuning_run(testbed, requests, method, config, plan=plan, seed=seed)
            row["package_hash"] = record["package_hash"]  # the code that made this row
            means = " ".join(f"{m} {row[f'{m} TF']:.3f}" for m in OBJECTIVE_METRICS)
            log(f"{method} {row['config']}: objective {row['objective']:.3f} {means}, {row['seconds']:.0f} s")
            # the scores first: a run stopped between the two writes leaves scores without a row, which the
            # rerun of that configuration replaces (never a row without its scores)
            stale = (scores.method == method) & (scores.config == row["config"])
            scores = pd.concat([scores[~stale], scored.assign(package_hash=row["package_hash"])], ignore_index=True)
            store.write_tuning_scores(output, scores)
            runs = pd.concat([runs, pd.DataFrame([row])], ignore_index=True)
            store.write_tuning_runs(output, runs)
    if rechecking:  # tuning.json and the choices stay as the tuning made them
        return {"recheck": recheck(testbed, requests, runs, output, plan=plan, methods=methods, seed=seed, log=log)}
    chosen = choose(runs[runs.method.isin(methods)], grids) if configs is None else {}
    for method, choice in chosen.items():
        if rescoring and runner_up_margin(runs, scores, method, choice, grids) is None:
            made_by = record["package_hash"]
            scores = rescore(
                testbed,
                requests,
                runs,
                scores,
                output,
                method,
                choice,
                grids,
                plan=plan,
                made_by=made_by,
                seed=seed,
                log=log,
            )
        choice["margin"] = runner_up_margin(runs, scores, method, choice, grids)
    point = {
        "model_name": testbed.name,
        "edits_per_language": plan.edits_per_language,
        "batch_size": plan.batch_size,
        "languages": list(plan.languages),
        "facts": plan.facts,
    }
    point |= {"tuning_facts": tuning_facts, "seed": seed, "schedule": plan.schedule}
    grid_names = {m: [config_name(c) for c in grids[m]] for m in methods}
    if configs is None:  # the choices of methods tuned earlier at this point and stage stay in the record
        kept_grids, kept = earlier_choices(store.read_tuning(output), point, stage, methods, log=log)
        grid_names, chosen = kept_grids | grid_names, kept | chosen
        chosen = {m: chosen[m] for m in METHODS if m in chosen}
    info = {
        "model": testbed.name,
        "point": point,
        "objective": "mean of the final teacher-forced " + ", ".join(OBJECTIVE_METRICS),
        "stage": stage,
        "grids": {m: grid_names[m] for m in METHODS if m in grid_names},
        "chosen": chosen,
    } | finish_record(record)
    # the record's time is the tuning's, not this invocation's (which may have run nothing and only applied)
    info["invocation_s"] = round(info.pop("wall_s"), 1)
    info |= tuning_seconds(runs, info["grids"], store.read_tuning_unedited(output))
    store.write_json(output / "tuning.json", info)
    for method, choice in chosen.items():
        log(f"{method}: {config_name(choice['config'])} (objective {choice['objective']:.3f})")
    if apply:
        before, before_text = testbed.current_hash(), hparams_path(testbed.hparams).read_text(encoding="utf-8")
        path = apply_choices(testbed.hparams, chosen, output, stage=stage)
        log(f"written into {path}")
        after, folder = testbed.current_hash(), runs_root / testbed.folder
        runs_kept_by_apply(before_text, path, before, after, runs_root=folder, equivalences=EQUIVALENCES, log=log)
    return info
