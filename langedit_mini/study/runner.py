"""Running a study one run at a time: the plan of runs, resumable, each written with its record.

A study of hours on 2 cores is split into runs of one seed and one method. ``run_part`` runs one
(``experiment.run_study``) and writes its raw tables and record (``store.finish_part``): the parameters,
the claims of ``verdicts.study_claims`` with their numbers (a claim that does not hold is kept as a
finding), the testbed's weights and the provenance. ``run_parts`` runs the missing runs of a plan, seed by
seed, methods in the order given: a finished run is skipped (so an interrupted study resumes where it
stopped), ``max_runs`` bounds one session's share, ``rerun_stale`` reruns the runs made by other code
(``provenance.is_current``), and the finished runs are merged after each run (``merge``: the main tables and
``provenance.json``). ``run_density`` runs every point of a testbed's density grid the same way, each point
one study under ``<output>/<point>``, in the order of ``density.density_plan``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from langedit_mini.data.schedules import split_facts
from langedit_mini.editing.defaults import default_config
from langedit_mini.editing.registry import METHODS
from langedit_mini.study import experiment, store
from langedit_mini.study.experiment import StudyPlan, check_methods, check_seeds
from langedit_mini.study.provenance import finish_record, is_current, start_record
from langedit_mini.study.readings import averages, main_table, ordered, unreached_targets
from langedit_mini.study.verdicts import STUDY_SEEDS, study_claims


def study_parameters(testbed, plan: StudyPlan, tuning_facts: int = 0) -> dict:
    """What every run of one study records and shares: the plan, the testbed's name, dataset and weights, and
    the tuning facts left out (``tau`` and ``alpha`` are kept for the runs recorded before ``overrides``)."""
    parameters = {
        "dataset": testbed.dataset,
        "schedule": plan.schedule,
        "tau": None,
        "alpha": None,
        "edits_per_language": plan.edits_per_language,
        "batch_size": plan.batch_size,
        "languages": list(plan.languages),
        "probe_every": plan.probe_every,
        "probe_limit": plan.probe_limit,
        "model": testbed.name,
        "facts": plan.facts,
        "evaluate_every": plan.evaluate_every,
        "tuning_facts": tuning_facts,
    }
    if plan.overrides:  # recorded only when given, so the runs made before the option keep their parameters
        parameters["overrides"] = dict(plan.overrides)
    return parameters | testbed.record()


def study_requests(testbed, languages, tuning_facts: int = 0) -> list:
    """The testbed's requests in ``languages``, without the tuning split's facts (``tuning_facts`` of them)."""
    requests = [r for r in testbed.requests if r.lang in set(languages)]
    if tuning_facts:
        requests, _ = split_facts(requests, tuning_facts)
    return requests


def run_part(testbed, output, seed: int, method: str, plan: StudyPlan, *, tuning_facts: int = 0) -> dict:
    """One seed and method of a study into ``output/parts/seed<seed>-<method>``; returns its record.

    The run is written into ``<name>.running`` and renamed when it has finished, so an interrupted run is
    never taken for a finished one. A claim of ``verdicts.study_claims`` that does not hold is kept with the
    run as a finding (at full scale that is a result, not a broken run)."""
    name = store.part_name(seed, method)
    store.begin_part(output, name)
    record = start_record(loader=testbed.loader, inputs=testbed.inputs)
    layers = default_config(method, testbed.hparams).layers
    study = experiment.run_study(
        testbed.model,
        testbed.tokenizer,
        study_requests(testbed, plan.languages, tuning_facts),
        testbed.statistics(layers),
        plan,
        methods=[method],
        seeds=[seed],
        hparams=testbed.hparams,
        probes=testbed.probes,
        log=None,
    )
    claims = list(study_claims(study, plan.evaluate_every).values())
    info = {
        "seed": seed,
        "method": method,
        "claims": [claim.as_dict() for claim in claims],
        "failed_claims": [claim.failure for claim in claims if not claim.holds],
        "parameters": study_parameters(testbed, plan, tuning_facts),
    } | finish_record(record)
    store.finish_part(output, name, study, info)
    return info


def merge(folder, seeds, methods, languages=None) -> dict:
    """Merge the finished runs of ``folder`` into its tables and ``provenance.json``; returns the latter.

    ``seeds`` and ``methods`` are the planned study: what is planned and not yet on disk is listed as
    missing. Raises ``ValueError`` when the runs disagree on a parameter (they would not be one study) and
    ``FileNotFoundError`` when there is no finished run."""
    folder = Path(folder)
    finished, unfinished = store.read_parts(folder)
    if not finished:
        raise FileNotFoundError(f"no finished part under {folder / 'parts'} (unfinished: {unfinished or 'none'})")
    reference_path, reference = finished[0]
    for path, info in finished[1:]:
        for key in sorted(set(info["parameters"]) | set(reference["parameters"])):
            if info["parameters"].get(key) != reference["parameters"].get(key):
                raise ValueError(
                    f"part {path.name} ran with {key}={info['parameters'].get(key)!r} but part "
                    f"{reference_path.name} with {reference['parameters'].get(key)!r}: they are not "
                    "one study; move one of them away or rerun it"
                )
    evaluations = store.read_raw(folder, "evaluations")
    done = {(info["seed"], info["method"]) for _, info in finished}
    present = {method for _, method in done}
    methods_present = [m for m in methods if m in present] + sorted(present - set(methods))
    languages = languages or reference["parameters"].get("languages")
    table = averages(evaluations, methods_present)
    table["unreached targets"] = unreached_targets(store.read_raw(folder, "batches")).reindex(table.index)
    tables = {
        f"main_table_{value}": main_table(evaluations, value, methods_present, languages)
        for value in ("teacher_forced", "exact_match")
    } | {"averages": table}
    provenance = {
        "parameters": reference["parameters"],
        "planned": {"seeds": list(seeds), "methods": list(methods)},
        "parts": [
            {"name": path.name}
            | {key: info[key] for key in ("seed", "method", "commit", "package_hash")}
            | {"wall_s": round(info["wall_s"], 1), "finished": info["finished"], "machine": info["machine"]}
            | {"failed_claims": info.get("failed_claims", [])}
            | ({"note": info["note"]} if "note" in info else {})
            for path, info in finished
        ],
        "missing": [store.part_name(s, m) for s in seeds for m in methods if (s, m) not in done],
        "unfinished": unfinished,
        "wall_s": round(sum(info["wall_s"] for _, info in finished), 1),
    }
    provenance["complete"] = not provenance["missing"]
    store.write_merged(folder, tables, provenance)
    return provenance


def run_parts(
    testbed,
    output,
    plan: StudyPlan,
    *,
    seeds=STUDY_SEEDS,
    methods=METHODS,
    tuning_facts: int = 0,
    max_runs: int | None = None,
    rerun_stale: bool = False,
    merge_only: bool = False,
    log=print,
) -> int:
    """Run the missing runs of the study (``seeds`` x ``methods``) under ``output``, merging after each;
    returns how many runs were made. A run on disk made with other parameters is an error."""
    methods, seeds = check_methods(methods), check_seeds(seeds)
    if max_runs is not None and (not isinstance(max_runs, int) or max_runs < 0):
        raise ValueError(f"max_runs must be None or an integer >= 0, got {max_runs!r}")
    parameters = study_parameters(testbed, plan, tuning_facts)
    planned, runs = ordered(methods), 0  # tables in the usual order, runs in the order asked
    for seed in seeds:
        for method in methods:
            if merge_only or (max_runs is not None and runs >= max_runs):
                break
            name = store.part_name(seed, method)
            info = store.read_part_record(output, name)
            if info is not None:
                if info["parameters"] != parameters:
                    raise ValueError(
                        f"{Path(output) / 'parts' / name} was made with other parameters ({info['parameters']}); "
                        "use another output folder or move it away"
                    )
                if not (rerun_stale and not is_current(info["package_hash"], testbed.current_hash())):
                    log(f"{name}: on disk ({info['finished']}), skipped")
                    continue
            log(f"{name}: running")
            torch.manual_seed(0)
            info = run_part(testbed, output, seed, method, plan, tuning_facts=tuning_facts)
            for failure in info["failed_claims"]:  # at full scale a finding, kept with the run
                log(f"{name}: {failure}")
            runs += 1
            log(f"{name}: {info['wall_s'] / 60:.1f} min")
            merge(output, seeds, planned, plan.languages)  # progress is visible after every run
    if store.read_parts(output)[0]:
        merge(output, seeds, planned, plan.languages)
    return runs


def run_density(
    testbed, output, *, points=None, seeds=STUDY_SEEDS, methods=METHODS, max_runs=None, dry_run=False, log=print
) -> int:
    """Every point of the testbed's density grid (``density.density_grid``), one study each under
    ``output/<point>``, in the order of ``density.density_plan``; returns how many runs were made."""
    from langedit_mini.study.density import density_grid, density_plan

    grid = density_grid(testbed)
    done = 0
    for step in density_plan(grid, points=points, seeds=seeds):
        if max_runs is not None and done >= max_runs:
            break
        log(f"== {step['point']} ({step['schedule']}), seeds {step['seeds']}")
        if dry_run:
            log(f"   {step['plan']}, tuning facts {grid['tuning_facts']}")
            continue
        done += run_parts(
            testbed,
            Path(output) / step["point"],
            step["plan"],
            seeds=step["seeds"],
            methods=methods,
            tuning_facts=grid["tuning_facts"],
            max_runs=None if max_runs is None else max_runs - done,
            log=log,
        )
    log(f"{done} runs made")
    return done


# --- verifying committed runs with today's code --------------------------------------------------------------


def plan_from_parameters(parameters: dict) -> tuple[StudyPlan, int]:
    """The ``StudyPlan`` and tuning facts a run recorded (``study_parameters`` read back)."""
    plan = StudyPlan(
        languages=parameters["languages"],
        edits_per_language=parameters["edits_per_language"],
        batch_size=parameters["batch_size"],
        schedule=parameters.get("schedule", "delta"),
        facts=parameters.get("facts", "distinct"),
        evaluate_every=parameters.get("evaluate_every", 1),
        probe_every=parameters["probe_every"],
        probe_limit=parameters["probe_limit"],
        overrides=parameters.get("overrides"),
    )
    return plan, parameters.get("tuning_facts", 0)


def table_difference(committed, rerun, keys=()) -> float:
    """The largest relative difference (``|a - b| / max(|a|, |b|)``) between the measured values of two raw
    tables of one run, row by row after sorting both by their identifying columns (``keys``,
    ``store.RAW_KEYS``, and every column that is not a number): a score that flips reads 1, a count that moves
    by one in ten reads 0.1; timings left out; infinite when the rows or columns themselves differ."""
    import numpy as np

    frames = [frame.drop(columns=["seconds"], errors="ignore") for frame in (committed, rerun)]
    if list(frames[0].columns) != list(frames[1].columns) or len(frames[0]) != len(frames[1]):
        return float("inf")
    if frames[0].empty:
        return 0.0
    numeric = [column for column in frames[0].columns if frames[0][column].dtype.kind in "biuf"]
    keys = [column for column in frames[0].columns if column in keys or column not in numeric]  # text identifies
    values = [column for column in frames[0].columns if column not in keys]
    frames = [frame.sort_values(keys, kind="stable").reset_index(drop=True) for frame in frames]
    if keys and not frames[0][keys].astype(str).equals(frames[1][keys].astype(str)):
        return float("inf")
    a, b = (frame[values].astype(float).to_numpy() for frame in frames)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-12)
    difference = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b) / scale)
    return float(np.nan_to_num(difference, nan=np.inf).max()) if difference.size else 0.0


def verify_runs(testbed, folder, scratch, *, seeds, methods, log=print) -> list[dict]:
    """Rerun the committed runs (``seeds`` x ``methods``) of the study under ``folder`` with today's code into
    ``scratch``, each with the parameters it recorded, and compare every raw table with the committed one
    (``table_difference``). One row per run: its name, the code that made it, today's code, and the largest
    relative difference per table."""
    rows = []
    for seed in check_seeds(seeds):
        for method in check_methods(methods):
            name = store.part_name(seed, method)
            record = store.read_part_record(folder, name)
            if record is None:
                raise FileNotFoundError(f"no finished run {name} under {folder}")
            plan, tuning_facts = plan_from_parameters(record["parameters"])
            torch.manual_seed(0)
            rerun = run_part(testbed, scratch, seed, method, plan, tuning_facts=tuning_facts)
            row = {"run": f"{Path(folder).name}/{name}", "made by": record["package_hash"]}
            row["rerun by"] = rerun["package_hash"]
            for table in store.RAW:
                committed = store.read_raw_part(Path(folder) / "parts" / name, table)
                again = store.read_raw_part(Path(scratch) / "parts" / name, table)
                row[table] = table_difference(committed, again, store.RAW_KEYS[table])
            log(f"{row['run']}: largest relative differences " + ", ".join(f"{t} {row[t]:.1e}" for t in store.RAW))
            rows.append(row)
    return rows
